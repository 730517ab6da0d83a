"""The `gpu` tier: CUDA paths against the CPU ones (skipped without a CUDA device; run by
benchmarks/gpu_figures.sh). `pytest -m gpu` selects just these."""
from __future__ import annotations

import pytest
import torch

from csa_lib.csa_layer import coherent_chain, coherent_semantic_attention, coherent_semantic_attention_reference
from csa_lib.engine.csa_chain import chain_backend
from conftest import centre_mask
from test_csa_layer import chain_inputs, random_holes

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def test_triton_is_the_cuda_backend():
    assert chain_backend(CUDA) == "triton"


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_cuda_chain_matches_the_cpu_chain(dtype, tol):
    # the Triton kernels against the CPU's torch loops, which tests/test_csa_layer.py holds to autograd
    # through the literal reference
    m_cpu, q_cpu, d_max_cpu, valid = chain_inputs(dtype, counts=(40, 17, 0, 1), channels=96)
    m_bar, q, d_max = (t.detach().to(CUDA).requires_grad_() for t in (m_cpu, q_cpu, d_max_cpu))
    y, a, b = coherent_chain(m_bar, q, d_max, valid.to(CUDA))
    y_ref, a_ref, b_ref = coherent_chain(m_cpu, q_cpu, d_max_cpu, valid)
    torch.testing.assert_close(y.cpu()[valid], y_ref[valid], rtol=tol, atol=tol)
    torch.testing.assert_close(a.cpu()[valid], a_ref[valid], rtol=tol, atol=tol)
    grad_out = torch.randn_like(y_ref) * valid[:, :, None]
    ours = torch.autograd.grad(y, (m_bar, q, d_max), grad_out.to(CUDA))
    want = torch.autograd.grad(y_ref, (m_cpu, q_cpu, d_max_cpu), grad_out)
    for got, ref in zip(ours, want):
        torch.testing.assert_close(got.cpu(), ref, rtol=tol, atol=tol)


def test_cuda_chain_gradcheck():
    m_bar, q, d_max, valid = (t.detach().to(CUDA) for t in chain_inputs(counts=(6, 3, 0)))
    keep = valid[:, :, None].double()
    args = tuple(t.requires_grad_() for t in (m_bar, q, d_max))
    assert torch.autograd.gradcheck(lambda m, qq, dm: coherent_chain(m, qq, dm, valid)[0] * keep, args,
                                    eps=1e-6, atol=1e-8)


def test_cuda_layer_matches_the_literal_reference_in_float64():
    torch.manual_seed(0)
    x = torch.randn(4, 32, 16, 16, dtype=torch.float64).abs()
    hole = random_holes(4, 16, 0.35, 1)
    hole[3] = False
    ref = coherent_semantic_attention_reference(x, hole)
    x_cuda = x.to(CUDA).requires_grad_()
    y = coherent_semantic_attention(x_cuda, hole.to(CUDA))
    torch.testing.assert_close(y.cpu(), ref, rtol=0, atol=1e-10)
    g = torch.randn_like(y)
    ours, = torch.autograd.grad(y, x_cuda, g)
    x_cpu = x.clone().requires_grad_()
    want, = torch.autograd.grad(coherent_semantic_attention(x_cpu, hole), x_cpu, g.cpu())
    torch.testing.assert_close(ours.cpu(), want, rtol=0, atol=1e-10)


def test_amp_training_step_on_cuda_is_finite(tiny_cfg):
    from csa_lib.train import Trainer  # here, not at the top: only this test trains
    trainer = Trainer(tiny_cfg.replace(amp=True), device="cuda")
    batch = {"image": torch.rand(2, 3, 64, 64) * 2 - 1, "mask": centre_mask(2, 64)}
    logs = trainer.train_step(batch)
    assert trainer.amp and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
