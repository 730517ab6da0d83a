"""The CSA chain (`csa_layer.coherent_chain`, the generate step) as one autograd function with a hand-written backward.

Per sample, over its hole cells t = 0..T-1 in raster order (m̄_t = the match, q_t = x̂_{p_t}, the
hole cell's normalised feature):

    y_0 = m̄_0;   d_t = <y_{t-1}, q_t>,  s_t = d_t + D_max,t,  a_t = d_t / s_t,  b_t = D_max,t / s_t,
    y_t = a_t y_{t-1} + b_t m̄_t                                                   (t >= 1)

(d_t = D_ad, a_t = a_new, b_t = a_ori in `csa_layer`'s notation). Its backward is the reverse
recurrence. With g_t = dL/dy_t (the output's gradient plus what later steps send back) and
e_t = <g_t, y_{t-1} - m̄_t>:

    dL/dm̄_t = b_t g_t,   dL/dd_t = e_t D_max,t / s_t²,   dL/dD_max,t = -e_t d_t / s_t²,
    dL/dq_t = (dL/dd_t) y_{t-1},   g_{t-1} = dL/dy_{t-1} + a_t g_t + (dL/dd_t) q_t

and dL/dm̄_0 = g_0. Autograd through a per-step loop records ~36 nodes per step and, for each
per-step index, a zero-filled full-size gradient; `CoherentChain` records one node and runs about 4
tensor ops per step backward and 6 forward (`chain_forward_torch`, `chain_backward_torch`), or on
CUDA one Triton kernel per direction, one program per sample (`csa_triton`). Tensors here are
step-major: (T,B,C) and (T,B). Padded steps (t >= the sample's hole count) get a = 1, b = 0: they
carry y_{t-1} and send nothing back.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor


def chain_backend(device: torch.device) -> str:
    """'triton' (one fused kernel per direction) or 'torch' (a loop of tensor ops) for tensors on `device`.

    Triton runs on CUDA when it imports, unless CSA_TRITON=0; with TRITON_INTERPRET=1 (Triton's CPU
    interpreter, for tests) it also runs on the CPU.
    """
    if os.environ.get("CSA_TRITON", "1") == "0":
        return "torch"
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return "torch"
    from . import csa_triton  # here, not at the top: importing Triton is slow, and CPU runs never need it
    return "triton" if csa_triton.AVAILABLE else "torch"


def chain_forward_torch(m_bar: Tensor, q: Tensor, d_max: Tensor, valid: Tensor) -> tuple[Tensor, ...]:
    """The recurrence as a loop of tensor ops, without a graph: m̄, q (T,B,C), D_max (T,B), valid (T,B)
    bool -> y (T,B,C) (0 at padded steps), a, b, d, s (T,B) (padded steps computed like the others)."""
    T = m_bar.shape[0]
    y = torch.empty_like(m_bar)  # (T,B,C)
    d, s, a, b = (torch.zeros_like(d_max) for _ in range(4))  # (T,B) each
    y[0] = m_bar[0]
    ys, ms, qs, dms = y.unbind(0), m_bar.unbind(0), q.unbind(0), d_max.unbind(0)
    ds, ss, as_, bs = d.unbind(0), s.unbind(0), a.unbind(0), b.unbind(0)
    prev = ys[0]  # (B,C)
    for t in range(1, T):
        torch.linalg.vecdot(prev, qs[t], out=ds[t])  # (B,) d_t = <y_{t-1}, q_t>
        torch.add(ds[t], dms[t], out=ss[t])  # (B,) s_t
        torch.div(ds[t], ss[t], out=as_[t])  # (B,) a_t
        torch.div(dms[t], ss[t], out=bs[t])  # (B,) b_t
        torch.mul(prev, as_[t][:, None], out=ys[t])  # (B,C)
        ys[t].addcmul_(ms[t], bs[t][:, None])  # (B,C) y_t = a_t y_{t-1} + b_t m̄_t
        prev = ys[t]
    y = torch.where(valid[:, :, None], y, torch.zeros_like(y))  # (T,B,C) padded steps: finite, unused
    return y, a, b, d, s


def chain_backward_torch(grad_y: Tensor, y: Tensor, m_bar: Tensor, q: Tensor, a: Tensor, b: Tensor, k_d: Tensor,
                         k_dmax: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The reverse recurrence as a loop: dL/dm̄, dL/dq (T,B,C) and dL/dD_max (T,B) from dL/dy (T,B,C)."""
    T = y.shape[0]
    g = torch.empty_like(y)  # (T,B,C) g_t = dL/dy_t with later steps' share
    e, gd = torch.zeros_like(a), torch.zeros_like(a)  # (T,B) e_t, dL/dd_t
    g[T - 1] = grad_y[T - 1]
    v = y[:-1] - m_bar[1:]  # (T-1,B,C) y_{t-1} - m̄_t
    gs, gys, vs, qs = g.unbind(0), grad_y.unbind(0), v.unbind(0), q.unbind(0)
    es, gds, as_, kds = e.unbind(0), gd.unbind(0), a.unbind(0), k_d.unbind(0)
    for t in range(T - 1, 0, -1):
        torch.linalg.vecdot(gs[t], vs[t - 1], out=es[t])  # (B,) e_t
        torch.mul(es[t], kds[t], out=gds[t])  # (B,) dL/dd_t
        torch.addcmul(gys[t - 1], gs[t], as_[t][:, None], out=gs[t - 1])  # (B,C)
        gs[t - 1].addcmul_(qs[t], gds[t][:, None])  # (B,C) g_{t-1}
    grad_m = g * b[:, :, None]  # (T,B,C) b_t g_t (b_0 = 1)
    grad_q = torch.zeros_like(q)  # (T,B,C)
    grad_q[1:] = gd[1:, :, None] * y[:-1]
    grad_dmax = -e * k_dmax  # (T,B)
    return grad_m, grad_q, grad_dmax


def _chain_scalars_valid(a: Tensor, b: Tensor, d: Tensor, s: Tensor, d_max: Tensor,
                         valid: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Weights and backward factors (T,B) of a forward pass: a, b, k_d = D_max / s², k_dmax = d / s².

    Padded steps (valid False) get a = 1, b = 0, k_d = k_dmax = 0 (they carry y_{t-1} and send no
    gradient); step 0 gets a = 0, b = 1, k = 0 (y_0 = m̄_0).
    """
    s2 = s * s  # (T,B)
    k_d = torch.where(valid, d_max / s2, torch.zeros_like(s))  # (T,B)
    k_dmax = torch.where(valid, d / s2, torch.zeros_like(s))  # (T,B)
    a = torch.where(valid, a, torch.ones_like(a))  # (T,B)
    b = torch.where(valid, b, torch.zeros_like(b))  # (T,B)
    a[0], b[0], k_d[0], k_dmax[0] = 0.0, 1.0, 0.0, 0.0
    return a, b, k_d, k_dmax


class CoherentChain(torch.autograd.Function):
    """y, a, b = chain(m̄ (T,B,C), q (T,B,C), D_max (T,B), valid (T,B) bool); gradients for m̄, q, D_max."""

    @staticmethod
    def forward(ctx, m_bar: Tensor, q: Tensor, d_max: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        m_bar, q, d_max, valid = m_bar.contiguous(), q.contiguous(), d_max.contiguous(), valid.contiguous()
        backend = chain_backend(m_bar.device)
        if backend == "triton":
            from . import csa_triton  # already imported by chain_backend; not at the top (see there)
            y, a, b, d, s = csa_triton.chain_forward(m_bar, q, d_max, valid)
        else:
            y, a, b, d, s = chain_forward_torch(m_bar, q, d_max, valid)
        a, b, k_d, k_dmax = _chain_scalars_valid(a, b, d, s, d_max, valid)
        ctx.backend = backend
        ctx.save_for_backward(y, m_bar, q, a, b, k_d, k_dmax)
        ctx.mark_non_differentiable(a, b)
        return y, a, b

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y: Tensor, _grad_a: Tensor, _grad_b: Tensor) -> tuple[Tensor | None, ...]:
        y, m_bar, q, a, b, k_d, k_dmax = ctx.saved_tensors
        grad_y = grad_y.contiguous()  # (T,B,C)
        if ctx.backend == "triton":
            from . import csa_triton  # imported by the forward already; not at the top (see chain_backend)
            grad_m, grad_q, grad_dmax = csa_triton.chain_backward(grad_y, y, m_bar, q, a, b, k_d, k_dmax)
        else:
            grad_m, grad_q, grad_dmax = chain_backward_torch(grad_y, y, m_bar, q, a, b, k_d, k_dmax)
        return grad_m, grad_q, grad_dmax, None
