"""Generator and discriminator shapes, inputs as the original builds them, and parameter counts."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from csa_lib.config import Config
from csa_lib.csa_layer import coherent_semantic_attention
from csa_lib.model import (HOLE_FILL, CoarseNet, CSAGenerator, DilatedDown, FeatureDiscriminator, PatchDiscriminator,
                           RefineNet, build_models, init_weights)
from conftest import centre_mask

ROOT = Path(__file__).resolve().parents[1]


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_original_at_default_width():
    # the original notebook prints netG 77,692,291 / netP 54,419,459 / netD 2,766,529 / netF 10,487,296
    assert n_params(RefineNet(64, 8)) == 77_692_291
    assert n_params(CoarseNet(64, 8)) == 54_419_459
    assert n_params(PatchDiscriminator(64)) == 2_766_529
    assert n_params(FeatureDiscriminator(64)) == 10_487_296


@pytest.mark.parametrize("size,ngf", [(16, 4), (32, 8), (64, 4), (128, 2)])
def test_generator_shapes(size, ngf):
    gen = CSAGenerator(ngf=ngf, image_size=size)
    image = torch.rand(2, 3, size, size) * 2 - 1
    out = gen(image, centre_mask(2, size))
    for name in ("coarse", "refined", "composite"):
        assert getattr(out, name).shape == (2, 3, size, size)
    assert out.csa_feature.shape == (2, 8 * ngf, size // 8, size // 8)
    assert out.decoder_feature.shape == out.csa_feature.shape
    assert out.feature_hole.shape == (2, 1, size // 8, size // 8)
    assert out.coarse.abs().max() <= 1.0  # Tanh


def test_larger_input_than_training_size_runs():
    gen = CSAGenerator(ngf=4, image_size=32)
    out = gen(torch.zeros(1, 3, 64, 96), centre_mask(1, 64)[..., :64].repeat(1, 1, 1, 2)[..., :96])
    assert out.refined.shape == (1, 3, 64, 96)


def test_composite_keeps_known_pixels_and_takes_refined_in_the_hole():
    torch.manual_seed(0)
    gen = CSAGenerator(ngf=4, image_size=32)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = centre_mask(1, 32)
    out = gen(image, mask)
    hole = mask.bool().expand_as(image)
    assert torch.equal(out.composite[~hole], image[~hole])
    assert torch.equal(out.composite[hole], out.refined[hole])


def test_inputs_built_as_the_original():
    # coarse input: hole filled with the constants; refinement input: [coarse composite, zero-filled image]
    gen = CSAGenerator(ngf=4, image_size=32)
    seen = {}
    gen.coarse_net.register_forward_hook(lambda m, i, o: seen.update(coarse_in=i[0], coarse_out=o))
    gen.refine_net.register_forward_hook(lambda m, i, o: seen.update(refine_in=i[0]))
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = centre_mask(1, 32)
    gen(image, mask)
    hole = mask.bool()[0, 0]
    for c, value in enumerate(HOLE_FILL):
        assert torch.all(seen["coarse_in"][0, c][hole] == torch.tensor(value, dtype=torch.float32))
        assert torch.equal(seen["coarse_in"][0, c][~hole], image[0, c][~hole])
    assert HOLE_FILL[0] == pytest.approx(-0.0352941, abs=1e-7) and HOLE_FILL[1] == pytest.approx(-0.1843137, abs=1e-7)
    refine_in = seen["refine_in"][0]
    assert torch.equal(refine_in[:3][:, hole], seen["coarse_out"][0][:, hole])
    assert torch.equal(refine_in[:3][:, ~hole], image[0][:, ~hole])
    assert torch.all(refine_in[3:][:, hole] == 0) and torch.equal(refine_in[3:][:, ~hole], image[0][:, ~hole])


@pytest.mark.parametrize("detach", [True, False])
def test_detach_between_coarse_and_refinement(detach):
    torch.manual_seed(1)
    gen = CSAGenerator(ngf=4, image_size=32, detach_coarse=detach)
    out = gen(torch.rand(1, 3, 32, 32) * 2 - 1, centre_mask(1, 32))
    out.refined.sum().backward()
    grad = gen.coarse_net.levels[0].down.weight.grad
    assert (grad is None or grad.abs().sum() == 0) == detach


def test_attention_returned_on_request():
    gen = CSAGenerator(ngf=4, image_size=64)
    out = gen(torch.rand(1, 3, 64, 64) * 2 - 1, centre_mask(1, 64), return_attention=True)
    assert out.attention is not None and out.attention.hole.shape == (1, 8, 8)
    assert torch.equal(out.attention.hole.float(), out.feature_hole[:, 0])
    assert gen(torch.zeros(1, 3, 64, 64), centre_mask(1, 64)).attention is None


def test_refine_net_returns_the_attention_it_is_asked_for():
    """`return_attention` is an argument all the way down: the refinement net hands back the CSA layer's
    record of its own forward, and nothing is left behind on the modules between calls."""
    torch.manual_seed(1)
    gen = CSAGenerator(ngf=4, image_size=64)
    x = torch.rand(2, 6, 64, 64) * 2 - 1
    hole = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    hole[0, :, 2:5, 3:6] = True
    hole[1, :, 4:7, 1:3] = True
    captured = {}
    hook = gen.refine_net.csa.register_forward_hook(lambda _m, inputs, _o: captured.update(x=inputs[0]))
    refined, csa_feature, _, attention = gen.refine_net(x, hole, return_attention=True)
    hook.remove()
    y, expected = coherent_semantic_attention(captured["x"], hole, return_attention=True)
    torch.testing.assert_close(csa_feature, y)
    torch.testing.assert_close(attention.match, expected.match)
    torch.testing.assert_close(attention.weight_prev, expected.weight_prev)
    plain = gen.refine_net(x, hole)
    assert plain[3] is None
    torch.testing.assert_close(plain[0], refined)
    # nothing left behind: the only attributes beyond a Module's are the ablation switches, unchanged
    assert vars(gen.refine_net.csa).keys() - vars(torch.nn.Module()).keys() == {"enabled", "match_fn"}
    assert gen.refine_net.csa.enabled is True and gen.refine_net.csa.match_fn is None


def test_bad_shapes_raise_clear_errors():
    gen = CSAGenerator(ngf=4, image_size=32)
    with pytest.raises(ValueError, match="mask must be"):
        gen(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="multiples of 32"):
        gen(torch.zeros(1, 3, 40, 40), torch.zeros(1, 1, 40, 40))
    with pytest.raises(ValueError, match="power of two"):
        CSAGenerator(ngf=4, image_size=48)


def test_fewer_unet_levels_run_the_same_weights_at_twice_the_size():
    small = CSAGenerator(ngf=4, image_size=32).eval()  # 5 levels
    large = CSAGenerator(ngf=4, image_size=64, depth=5).eval()
    assert large.depth == 5 and CSAGenerator(ngf=4, image_size=64).depth == 6
    shapes = {k: v.shape for k, v in small.state_dict().items()}
    assert {k: v.shape for k, v in large.state_dict().items()} == shapes
    large.load_state_dict(small.state_dict())
    image, mask = torch.rand(1, 3, 64, 64) * 2 - 1, torch.zeros(1, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    with torch.no_grad():
        assert torch.equal(large(image, mask).composite, small(image, mask).composite)
    with pytest.raises(ValueError, match="depth must be between 4 and log2"):
        CSAGenerator(ngf=4, image_size=64, depth=7)


def test_discriminator_shapes():
    assert PatchDiscriminator(8)(torch.zeros(2, 3, 256, 256)).shape == (2, 1, 30, 30)
    assert FeatureDiscriminator(8)(torch.zeros(2, 256, 32, 32)).shape == (2, 64, 4, 4)


def test_build_models_initialises_like_the_original():
    gen, pd, fd = build_models(Config.smoke(ngf=8, ndf=8, image_size=32))
    w = torch.cat([m.weight.detach().flatten() for m in gen.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002
    assert all(float(m.bias.detach().abs().sum()) == 0 for m in pd.modules() if isinstance(m, torch.nn.Conv2d))
    norm = gen.refine_net.levels[0].down_norm
    assert torch.equal(norm.weight, torch.ones_like(norm.weight))
    init_weights(fd, std=0.5)
    assert float(fd.layers[0].weight.detach().std()) > 0.4


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 4, 7, 9), (1, 2, 2, 2), (1, 1, 1, 3)])
def test_dilated_down_equals_the_dilated_conv(shape):
    torch.manual_seed(0)
    fast = DilatedDown(shape[1]).double()
    slow = torch.nn.Conv2d(shape[1], shape[1], 4, 2, 3, dilation=2).double()
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    y_fast, y_slow = fast(x), slow(x)
    assert y_fast.shape == y_slow.shape
    assert torch.allclose(y_fast, y_slow, atol=1e-12)
    g = torch.randn_like(y_slow)
    grads_fast = torch.autograd.grad(y_fast, (x, fast.weight, fast.bias), g)
    grads_slow = torch.autograd.grad(y_slow, (x, slow.weight, slow.bias), g)
    for a, b in zip(grads_fast, grads_slow):
        assert torch.allclose(a, b, atol=1e-12)


def _count(*modules: torch.nn.Module) -> int:
    return sum(n_params(m) for m in modules)


def test_parameter_counts_stated_in_the_docs_are_the_models():
    """Every parameter count the README, the spec and the demo script state, against the model itself."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        demo = CSAGenerator(ngf=16, image_size=128)
        full = CSAGenerator(ngf=64, image_size=256)
        discs = {ndf: (PatchDiscriminator(ndf), FeatureDiscriminator(ndf)) for ndf in (16, 64)}
    readme = " ".join((ROOT / "README.md").read_text().split())
    spec = " ".join((ROOT / "docs" / "csa_spec.md").read_text().split())
    script = (ROOT / "scripts" / "train_demo_model.sh").read_text()

    def stated(pattern: str, text: str) -> str:
        found = re.search(pattern, text)
        assert found, f"no match for {pattern!r}"
        return found.group(1)

    assert stated(r"`--ngf 16 --ndf 16` \((\d+\.\d) M parameters\)", readme) == f"{_count(demo, *discs[16]) / 1e6:.1f}"
    assert stated(r"default `--ndf 64` \((\d+\.\d) M", readme) == f"{_count(demo, *discs[64]) / 1e6:.1f}"
    assert stated(r"at full width \((\d+) M\)", readme) == f"{round(_count(full, *discs[64]) / 1e6)}"
    assert stated(r"ngf 16 \((\d+\.\d) M generator parameters", script) == f"{_count(demo) / 1e6:.1f}"
    card = " ".join((ROOT / "data" / "checkpoints" / "README.md").read_text().split())
    assert stated(r"`ngf=16`, (\d+\.\d) M parameters", card) == f"{_count(demo) / 1e6:.1f}"
    assert "8.3 M" not in card  # the figure it used to give
    ngf64 = [full.refine_net, full.coarse_net, *discs[64]]
    assert stated(r"parameter counts ([\d,]+ / [\d,]+ / [\d,]+ / [\d,]+) at ngf 64", readme) == \
        " / ".join(f"{n_params(m):,}" for m in ngf64)
    assert stated(r"Parameter count at ngf = 64: (\d[\d,]*\d)", spec) == f"{n_params(full.coarse_net):,}"
    assert stated(r"(\d[\d,]*\d) parameters at ngf = 64", spec) == f"{n_params(full.refine_net):,}"
