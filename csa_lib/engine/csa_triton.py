"""The CSA chain (`csa_chain.CoherentChain`) as two Triton kernels: one program per sample walks its
hole cells in order, forward and then backward, so a call is 2 kernel launches whatever the hole count.

Same recurrence and the same reverse recurrence as the torch loops in `csa_chain` (derived in its
docstring). Tensors are step-major: (T,B,C) and (T,B), contiguous. Used on CUDA; with
TRITON_INTERPRET=1 set before this module is imported, Triton's interpreter runs the same kernels on
the CPU (how the tests check them without a GPU). `AVAILABLE` is False when Triton does not import
(CPU-only wheels); `csa_chain.chain_backend` then falls back to the torch loops.
"""
from __future__ import annotations

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only torch wheels ship without Triton
    triton = tl = None

AVAILABLE = triton is not None


if AVAILABLE:
    @triton.jit
    def _chain_forward_kernel(m_ptr, q_ptr, dmax_ptr, valid_ptr, y_ptr, a_ptr, b_ptr, d_ptr, s_ptr,
                              T, B, C, BLOCK_C: tl.constexpr):
        """Program `sample`: y_0 = m̄_0, then y_t = a_t y_{t-1} + b_t m̄_t over t = 1..T-1."""
        sample = tl.program_id(0)
        offs = tl.arange(0, BLOCK_C)
        inside = offs < C
        prev = tl.load(m_ptr + sample * C + offs, mask=inside, other=0.0)  # (C,) y_0 = m̄_0
        tl.store(y_ptr + sample * C + offs, prev, mask=inside)
        for t in range(1, T):
            row = t * B + sample
            q = tl.load(q_ptr + row * C + offs, mask=inside, other=0.0)  # (C,) x̂_{p_t}
            m = tl.load(m_ptr + row * C + offs, mask=inside, other=0.0)  # (C,) m̄_t
            d_max = tl.load(dmax_ptr + row)
            valid = tl.load(valid_ptr + row) != 0
            d = tl.sum(prev * q, axis=0)  # D_ad
            s = d + d_max
            s_safe = tl.where(valid, s, 1.0)
            a = tl.where(valid, d / s_safe, 1.0)  # padded steps carry y_{t-1}
            b = tl.where(valid, d_max / s_safe, 0.0)
            y = a * prev + b * m  # (C,)
            tl.store(y_ptr + row * C + offs, y, mask=inside)
            tl.store(a_ptr + row, a)
            tl.store(b_ptr + row, b)
            tl.store(d_ptr + row, d)
            tl.store(s_ptr + row, s_safe)
            prev = y

    @triton.jit
    def _chain_backward_kernel(gy_ptr, y_ptr, m_ptr, q_ptr, a_ptr, b_ptr, kd_ptr, kdmax_ptr,
                               gm_ptr, gq_ptr, gdmax_ptr, T, B, C, BLOCK_C: tl.constexpr):
        """Program `sample`: the reverse recurrence from t = T-1 down to 1, then dL/dm̄_0 = g_0."""
        sample = tl.program_id(0)
        offs = tl.arange(0, BLOCK_C)
        inside = offs < C
        g = tl.load(gy_ptr + ((T - 1) * B + sample) * C + offs, mask=inside, other=0.0)  # (C,) g_{T-1}
        for i in range(0, T - 1):
            t = T - 1 - i
            row = t * B + sample
            prow = row - B  # step t-1
            y_prev = tl.load(y_ptr + prow * C + offs, mask=inside, other=0.0)  # (C,)
            m = tl.load(m_ptr + row * C + offs, mask=inside, other=0.0)  # (C,)
            q = tl.load(q_ptr + row * C + offs, mask=inside, other=0.0)  # (C,)
            a = tl.load(a_ptr + row)
            b = tl.load(b_ptr + row)
            e = tl.sum(g * (y_prev - m), axis=0)
            grad_d = e * tl.load(kd_ptr + row)
            tl.store(gm_ptr + row * C + offs, b * g, mask=inside)
            tl.store(gq_ptr + row * C + offs, grad_d * y_prev, mask=inside)
            tl.store(gdmax_ptr + row, -e * tl.load(kdmax_ptr + row))
            g = tl.load(gy_ptr + prow * C + offs, mask=inside, other=0.0) + a * g + grad_d * q  # g_{t-1}
        tl.store(gm_ptr + sample * C + offs, g, mask=inside)  # b_0 = 1
        tl.store(gq_ptr + sample * C + offs, tl.zeros_like(g), mask=inside)
        tl.store(gdmax_ptr + sample, tl.sum(tl.zeros_like(g), axis=0))


def _block(C: int) -> int:
    return max(16, triton.next_power_of_2(C))


def chain_forward(m_bar: Tensor, q: Tensor, d_max: Tensor, valid: Tensor) -> tuple[Tensor, ...]:
    """m̄, q (T,B,C), D_max (T,B), valid (T,B) bool -> y (T,B,C), a, b, d, s (T,B), one kernel launch."""
    T, B, C = m_bar.shape
    m_bar, q, d_max = m_bar.contiguous(), q.contiguous(), d_max.contiguous()
    y = torch.empty_like(m_bar)  # (T,B,C)
    a, b, d, s = (torch.zeros_like(d_max) for _ in range(4))  # (T,B) each
    valid_u8 = valid.to(torch.uint8).contiguous()  # (T,B)
    _chain_forward_kernel[(B,)](m_bar, q, d_max, valid_u8, y, a, b, d, s, T, B, C, BLOCK_C=_block(C))
    return y, a, b, d, s


def chain_backward(grad_y: Tensor, y: Tensor, m_bar: Tensor, q: Tensor, a: Tensor, b: Tensor, k_d: Tensor,
                   k_dmax: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """dL/dm̄, dL/dq (T,B,C) and dL/dD_max (T,B) from dL/dy (T,B,C) and the saved forward, one launch."""
    T, B, C = y.shape
    a, b, k_d, k_dmax = (t.contiguous() for t in (a, b, k_d, k_dmax))  # (T,B) each, step-major
    grad_y, y, m_bar, q = (t.contiguous() for t in (grad_y, y, m_bar, q))  # (T,B,C) each
    grad_m, grad_q = torch.empty_like(y), torch.empty_like(y)  # (T,B,C)
    grad_dmax = torch.empty_like(a)  # (T,B)
    _chain_backward_kernel[(B,)](grad_y, y, m_bar, q, a, b, k_d, k_dmax, grad_m, grad_q, grad_dmax,
                                 T, B, C, BLOCK_C=_block(C))
    return grad_m, grad_q, grad_dmax
