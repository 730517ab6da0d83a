"""The batched CSA layer against two slow literal references, plus its edge cases and gradients."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from csa_lib import csa_layer
from csa_lib.csa_layer import (CSALayer, coherent_chain, coherent_semantic_attention,
                               coherent_semantic_attention_reference, feature_hole_mask)
from csa_lib.engine.csa_chain import chain_backend
from conftest import centre_mask


def attention_row_reference(x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """The original's own formulation (spec §4): an attention row per hole cell over ALL cells.

    Each hole keeps a row `att` of length h*w (previous row times a_new, plus a_ori at its match),
    and the output is att @ (all original features): a different computation from the recursion.
    """
    B, C, h, w = x.shape
    y = x.clone()
    for b in range(B):
        feats = x[b].reshape(C, h * w).t()  # (N,C)
        flat = hole[b, 0].reshape(-1)
        known = (~flat).nonzero().flatten()
        holes = flat.nonzero().flatten()
        cand = feats[known] / (feats[known].norm(dim=1, keepdim=True) + 1e-8)
        prev_row = None
        for t, p in enumerate(holes.tolist()):
            scores = cand @ feats[p]
            d_max, j = scores.max(0)
            row = torch.zeros(h * w, dtype=x.dtype)
            if t == 0:
                row[known[j]] = 1.0
            else:
                prev_out = prev_row @ feats
                d_ad = prev_out @ (feats[p] / (feats[p].norm() + 1e-8))
                row = prev_row * (d_ad / (d_ad + d_max))
                row[known[j]] += d_max / (d_ad + d_max)
            y[b, :, p // w, p % w] = row @ feats
            prev_row = row
    return y


def random_holes(batch: int, size: int, ratio: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, size, size, generator=g) < ratio


def test_feature_mask_centre_example_has_252_cells():
    mask = centre_mask(1, 256)
    assert mask[0, 0].sum() == 120 * 120  # rows/cols 68..187
    fm = feature_hole_mask(mask)[0, 0]
    assert fm.shape == (32, 32) and int(fm.sum()) == 252
    block = fm[8:24, 8:24]
    assert bool(block.sum() == 252) and not fm[[8, 8, 23, 23], [8, 23, 8, 23]].any()  # corners dropped
    assert not fm[:8].any() and not fm[24:].any()


def test_feature_mask_equals_three_literal_convolutions():
    mask = (torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    weight = torch.full((1, 1, 4, 4), 1 / 16)
    m = mask
    for _ in range(3):
        m = torch.nn.functional.conv2d(m, weight, stride=2, padding=1)
    assert torch.equal(feature_hole_mask(mask), m > 5 / 16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_literal_reference_per_sample_masks(seed):
    torch.manual_seed(seed)
    x = torch.randn(4, 16, 8, 8, dtype=torch.float64)
    hole = random_holes(4, 8, 0.35, seed)
    hole[3] = False  # a sample without holes in the same batch
    hole[2, 0, 0, :] = True  # the first row fully masked: the chain crosses rows
    y = coherent_semantic_attention(x, hole)
    expected = coherent_semantic_attention_reference(x, hole)
    torch.testing.assert_close(y, expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(y, attention_row_reference(x, hole), rtol=1e-9, atol=1e-9)
    assert torch.equal(y[3], x[3])


def test_realistic_features_full_size_float32():
    # post-ReLU-like features at the real size: float32 agrees with the float64 reference
    torch.manual_seed(0)
    x = torch.randn(2, 512, 32, 32).relu()
    hole = feature_hole_mask(centre_mask(2, 256))
    hole[1] = random_holes(1, 32, 0.3, 7)[0]
    y = coherent_semantic_attention(x, hole)
    expected = coherent_semantic_attention_reference(x.double(), hole).float()
    assert ((y - expected).abs().max() / expected.abs().max()) < 1e-4


def test_each_sample_uses_its_own_mask():
    # the original cached the first sample's hole indices; here sample order must not matter
    torch.manual_seed(1)
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64)
    hole = random_holes(2, 8, 0.3, 11)
    both = coherent_semantic_attention(x, hole)
    swapped = coherent_semantic_attention(x.flip(0), hole.flip(0)).flip(0)
    single = torch.cat([coherent_semantic_attention(x[i:i + 1], hole[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(both, swapped)
    torch.testing.assert_close(both, single)


def test_known_cells_unchanged_and_holes_changed():
    torch.manual_seed(2)
    x = torch.randn(1, 8, 6, 6).abs()
    hole = random_holes(1, 6, 0.4, 5)
    y = coherent_semantic_attention(x, hole)
    keep = ~hole.expand_as(x)
    assert torch.equal(y[keep], x[keep])
    assert not torch.allclose(y[~keep], x[~keep])


def test_no_hole_is_identity():
    x = torch.randn(2, 4, 5, 5)
    y, att = coherent_semantic_attention(x, torch.zeros(2, 1, 5, 5, dtype=torch.bool), return_attention=True)
    assert torch.equal(y, x)
    assert att.order.shape == (2, 0) and torch.equal(att.match.flatten(1), torch.arange(25).expand(2, 25))


def test_single_hole_copies_its_best_match():
    x = torch.zeros(1, 3, 3, 3)
    x[0, :, 0, 0] = torch.tensor([1.0, 1.0, 0.0])   # cos 0.71 with the query
    x[0, :, 2, 2] = torch.tensor([0.0, 5.0, 0.0])   # large norm but orthogonal to the query
    x[0, :, 0, 2] = torch.tensor([2.0, 0.2, 0.0])   # cos 0.995: the best match
    x[0, :, 1, 1] = torch.tensor([3.0, 0.0, 0.0])   # the hole cell's own (original) feature
    hole = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    hole[0, 0, 1, 1] = True
    y, att = coherent_semantic_attention(x, hole, return_attention=True)
    assert torch.equal(y[0, :, 1, 1], x[0, :, 0, 2])
    assert int(att.match[0, 1, 1]) == 2 and float(att.weight_match[0, 1, 1]) == 1.0


def test_all_hole_sample_raises_clear_error():
    x = torch.randn(2, 4, 4, 4)
    hole = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    hole[1] = True
    with pytest.raises(ValueError, match="sample 1 has no known cell"):
        coherent_semantic_attention(x, hole)


def test_wrong_hole_shape_raises():
    with pytest.raises(ValueError, match="hole must be"):
        coherent_semantic_attention(torch.randn(1, 4, 4, 4), torch.zeros(1, 1, 8, 8, dtype=torch.bool))


def test_attention_record_reproduces_the_output():
    torch.manual_seed(4)
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64).abs()
    hole = random_holes(2, 6, 0.4, 9)
    y, att = coherent_semantic_attention(x, hole, return_attention=True)
    xf = x.flatten(2)  # (B,C,N)
    for b in range(2):
        prev = None
        for p in att.order[b][att.order[b] >= 0].tolist():
            r, c = divmod(p, 6)
            m_bar = xf[b, :, att.match[b, r, c]]
            out = att.weight_match[b, r, c] * m_bar + (att.weight_prev[b, r, c] * prev if prev is not None else 0)
            torch.testing.assert_close(out, y[b, :, r, c])
            prev = out
        # the score map of the first hole cell is -inf exactly at hole cells
        first = att.order[b, 0].item()
        smap = att.score_map(b, *divmod(first, 6))
        assert torch.equal(torch.isinf(smap), hole[b, 0])
        assert int(smap.flatten().argmax()) == int(att.match[b].flatten()[first])


def test_gradients_reach_the_input_and_match_finite_differences():
    torch.manual_seed(5)
    x = torch.randn(2, 4, 4, 4, dtype=torch.float64).abs().requires_grad_()
    hole = random_holes(2, 4, 0.4, 1)
    assert torch.autograd.gradcheck(lambda t: coherent_semantic_attention(t, hole), (x,), eps=1e-6, atol=1e-5)
    coherent_semantic_attention(x, hole).square().sum().backward()
    assert x.grad is not None and x.grad[hole.expand_as(x)].abs().sum() > 0


def test_half_precision_and_module_form():
    torch.manual_seed(6)
    x = torch.randn(1, 8, 8, 8).abs()
    hole = random_holes(1, 8, 0.3, 2)
    layer = CSALayer()
    y16 = layer(x.half(), hole)  # no attention unless asked: a plain tensor
    assert isinstance(y16, torch.Tensor) and y16.dtype == torch.float16
    torch.testing.assert_close(y16.float(), coherent_semantic_attention(x, hole), rtol=2e-2, atol=2e-2)
    y, attention = layer(x, hole, return_attention=True)
    assert attention is not None and attention.hole.shape == (1, 8, 8)
    assert torch.equal(y, coherent_semantic_attention(x, hole))
    # stateless: nothing kept between calls; the only attributes are the ablation switches, left as set
    assert vars(layer).keys() - vars(torch.nn.Module()).keys() == {"enabled", "match_fn"}
    assert layer.enabled is True and layer.match_fn is None and not layer.state_dict()


# --------------------------------------------------------------------------------------------
# The chain as one autograd function (torch loop on the CPU, Triton kernels on CUDA)
# --------------------------------------------------------------------------------------------
def chain_inputs(dtype: torch.dtype = torch.float64, counts: tuple[int, ...] = (7, 4, 0, 1), channels: int = 5):
    """Random m̄ (B,T,C), q (B,T,C), D_max (B,T) leaves and valid (B,T) for per-sample hole counts."""
    g = torch.Generator().manual_seed(11)
    B, T = len(counts), max(counts)
    m_bar = torch.rand(B, T, channels, generator=g, dtype=dtype).requires_grad_()
    q = torch.rand(B, T, channels, generator=g, dtype=dtype).requires_grad_()
    d_max = (torch.rand(B, T, generator=g, dtype=dtype) + 0.5).requires_grad_()
    valid = torch.arange(T)[None, :] < torch.tensor(counts)[:, None]
    return m_bar, q, d_max, valid


def test_chain_function_matches_autograd_through_the_literal_reference():
    # the hand-written backward against autograd's gradient of the literal loop, in a batch with
    # 7, 4, 0 and 1 hole cells: every sample but the first has padded steps
    torch.manual_seed(13)
    x = torch.randn(4, 5, 4, 4, dtype=torch.float64).abs().requires_grad_()
    hole = torch.zeros(4, 16, dtype=torch.bool)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(2))
    for b, count in enumerate((7, 4, 0, 1)):
        hole[b, order[:count]] = True
    hole = hole.reshape(4, 1, 4, 4)
    y = coherent_semantic_attention(x, hole)
    ref = coherent_semantic_attention_reference(x, hole)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-12)
    grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=y.dtype)
    ours, = torch.autograd.grad(y, x, grad_out)
    want, = torch.autograd.grad(ref, x, grad_out)
    torch.testing.assert_close(ours, want, rtol=0, atol=1e-12)


def test_chain_function_passes_gradcheck():
    m_bar, q, d_max, valid = chain_inputs(counts=(6, 3, 0))
    keep = valid[:, :, None].to(m_bar.dtype)

    def chain(m, qq, dm):
        return coherent_chain(m, qq, dm, valid)[0] * keep  # (B,T,C), padded steps masked out

    assert torch.autograd.gradcheck(chain, (m_bar, q, d_max), eps=1e-6, atol=1e-8)
    ours = torch.autograd.grad(chain(m_bar, q, d_max).sum(), (m_bar, q, d_max))
    assert ours[0][0].abs().sum() > 0 and ours[2][0, 1:].abs().sum() > 0  # every input gets a gradient


def test_layer_gradients_match_autograd_through_the_literal_reference():
    torch.manual_seed(12)
    x = torch.randn(3, 6, 7, 7, dtype=torch.float64).abs().requires_grad_()
    hole = random_holes(3, 7, 0.45, 4)
    hole[2] = False  # a sample without holes in a ragged batch
    y = coherent_semantic_attention(x, hole)
    ref = coherent_semantic_attention_reference(x, hole)
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-10)
    grad_out = torch.randn_like(y)
    ours, = torch.autograd.grad(y, x, grad_out)
    want, = torch.autograd.grad(ref, x, grad_out)
    torch.testing.assert_close(ours, want, rtol=0, atol=1e-10)


def test_chain_backend_falls_back_to_torch(monkeypatch):
    from csa_lib.engine import csa_triton  # here, not at the top: it imports Triton, which is slow
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delenv("CSA_TRITON", raising=False)
    cuda = torch.device("cuda")
    assert chain_backend(torch.device("cpu")) == "torch"
    monkeypatch.setattr(csa_triton, "AVAILABLE", True)
    assert chain_backend(cuda) == "triton"
    monkeypatch.setenv("CSA_TRITON", "0")  # the user's switch wins
    assert chain_backend(cuda) == "torch"
    monkeypatch.delenv("CSA_TRITON")
    monkeypatch.setattr(csa_triton, "AVAILABLE", False)  # CPU-only wheels: no Triton
    assert chain_backend(cuda) == "torch"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert chain_backend(torch.device("cpu")) == "torch"


TRITON_CHECK = """
import torch
from csa_lib import csa_layer
from csa_lib.engine.csa_chain import chain_backend
assert chain_backend(torch.device("cpu")) == "triton"
torch.manual_seed(0)
x = torch.randn(3, 5, 6, 6, dtype=torch.float64).abs().requires_grad_()
hole = torch.rand(3, 1, 6, 6) < 0.4
hole[1] = False
y = csa_layer.coherent_semantic_attention(x, hole)
ref = csa_layer.coherent_semantic_attention_reference(x, hole)
torch.testing.assert_close(y, ref, rtol=0, atol=1e-10)
g = torch.randn_like(y)
ours, = torch.autograd.grad(y, x, g)
want, = torch.autograd.grad(ref, x, g)
torch.testing.assert_close(ours, want, rtol=0, atol=1e-10)
print("triton-ok")
"""


def test_triton_kernels_match_the_reference_in_the_interpreter():
    # the CUDA kernels, run by Triton's CPU interpreter (it must be switched on before triton imports)
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "CSA_TRITON": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", TRITON_CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "triton-ok" in done.stdout, done.stderr[-3000:]


def test_training_step_losses_unchanged_by_the_custom_chain(tiny_cfg, monkeypatch):
    # the same seed gives the same losses and generator gradients with the batched layer (the custom
    # chain) and with autograd through the literal reference in its place. Gradients, not weights after
    # Adam: Adam moves every weight by about lr * sign(g) in its first steps, so a round-off-sized
    # gradient whose sign flips would move a weight by 2 lr.
    from csa_lib.train import Trainer  # here, not at the top: only this test trains
    batch = {"image": torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1,
             "mask": centre_mask(2, 64)}
    batch["mask"][1, :, 4:20, 30:60] = 1.0  # ragged: the two samples have different hole counts

    def one_step() -> tuple[dict[str, float], torch.Tensor]:
        trainer = Trainer(tiny_cfg, device="cpu")
        logs = trainer.train_step(batch)
        grads = [p.grad.flatten() for p in trainer.generator.refine_net.parameters() if p.grad is not None]
        assert grads, "the refinement net got no gradient"
        return logs, torch.cat(grads)

    def literal(x, hole, return_attention=False, match_fn=None):
        assert not return_attention and match_fn is None  # a training step asks for neither
        return coherent_semantic_attention_reference(x, hole)

    logs_new, grads_new = one_step()
    monkeypatch.setattr(csa_layer, "coherent_semantic_attention", literal)  # what CSALayer.forward calls
    logs_old, grads_old = one_step()
    assert logs_new.keys() == logs_old.keys()
    for k in logs_new:
        assert logs_new[k] == pytest.approx(logs_old[k], rel=1e-5, abs=1e-6), k
    assert grads_old.abs().max() > 0
    # float32: the chain's unclamped ratio weights amplify round-off (its exactness is checked in
    # float64 to 1e-10 above), so gradients agree to 1e-5 of their largest value, not bit for bit
    torch.testing.assert_close(grads_new, grads_old, rtol=1e-4, atol=1e-5 * float(grads_old.abs().max()))
