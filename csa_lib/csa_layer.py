"""Coherent Semantic Attention (CSA, Liu et al., ICCV 2019), batched, exactly as the original code computes it.

CSA fills the hole of a feature map from its known part, one hole patch after another, so that each
filled patch both resembles the known context and agrees with the patch filled before it. The layer
sees a feature map x of C-vectors x_p, one per raster position p = row * W + col; M = the hole
positions, M̄ = the known ones (`feature_hole_mask` finds M at the feature level), both in raster
order. Patches are 1x1, so a patch m_i is one feature vector. Notation as in the paper; what the
original code does where the paper differs is in `docs/csa_spec.md` §4.

**Search** (all hole positions at once; `search_matches`). Each hole patch is compared with every
known patch by cross-correlation, and its best match is kept:

    D(p, k) = < x_p , x_k / (||x_k|| + 1e-8) >          (p in M, k in M̄; only the candidate is normalised)
    m̄_p = x_{k*},  k* = argmax_k D(p, k),  D_max(p) = D(p, k*)       (hard argmax, no softmax)

(the paper normalises both vectors; the original code, followed here, only the candidate: the
same argmax, other blend weights).

**Generate** (sequential, in raster order over the hole positions p_1, p_2, ... only; `coherent_chain`).
The first hole patch is its match, m_1 = m̄_{p_1}; each later one blends the previously generated
patch m_{i-1} (the previous hole position in raster order, not necessarily a neighbour) with its own
match, weighted by how similar each is to it:

    D_ad(i) = < m_{i-1} , x_{p_i} / (||x_{p_i}|| + 1e-8) >
    m_i     = D_ad / (D_ad + D_max) * m_{i-1}  +  D_max / (D_ad + D_max) * m̄_{p_i}
            =        a_new          * m_{i-1}  +         a_ori          * m̄_{p_i}

The weights are plain ratios (no clamp), as in the original. Known positions are returned unchanged.

**The forward** (`coherent_semantic_attention`, and `CSALayer` as a module) runs both steps on a
batch where each sample has its own mask (the original cached the hole indices of its first call),
and can return what it did (`CSAAttention`: matches, weights, scores). Its gradients are the exact
derivative of this forward (the original used a truncated-integer straight-through backward); the
hand-written backward and the Triton kernels that compute them live in `csa_lib/engine/` (the end of
this file says where). `coherent_semantic_attention_reference` is the same method as a slow literal
loop, for tests and benchmarks.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .engine.csa_chain import CoherentChain

EPS = 1e-8
FEATURE_MASK_THRESHOLD = 5.0 / 16.0


def feature_hole_mask(mask: Tensor, steps: int = 3) -> Tensor:
    """Hole mask at CSA resolution: (B,1,H,W) image mask -> (B,1,H/2^steps,W/2^steps) bool.

    The original applies `steps` times a 1->1 conv (k4, s2, p1, all weights 1/16, zero padding),
    with no threshold in between, then keeps cells `> 5/16`. A 4x4 average pool that counts the
    zero padding is the same linear filter (all values are exact dyadic fractions in float32).
    """
    m = (mask > 0.5).to(torch.float32)  # (B,1,H,W)
    for _ in range(steps):
        m = F.avg_pool2d(m, kernel_size=4, stride=2, padding=1, count_include_pad=True)
    return m > FEATURE_MASK_THRESHOLD  # (B,1,h,w)


# --------------------------------------------------------------------------------------------
# Search: the best known match m̄ of every hole patch, and its score D_max
# --------------------------------------------------------------------------------------------
def normalise_features(xf: Tensor) -> Tensor:
    """x̂: feature vectors (B,N,C) each divided by its norm + EPS, as the search and the generate step use them."""
    return xf / (xf.norm(dim=2, keepdim=True) + EPS)  # (B,N,C)


def search_matches(xq: Tensor, x_hat: Tensor, known: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The search step: queries xq (B,T,C) vs normalised candidates x_hat (B,N,C), known (B,N) bool ->
    scores D (B,T,N) (-inf at hole candidates), best known match k* (B,T) and D_max (B,T)."""
    scores = torch.bmm(xq, x_hat.transpose(1, 2))  # (B,T,N)
    scores = scores.masked_fill(~known[:, None, :], float("-inf"))  # hole cells are never candidates
    max_score, best = scores.max(dim=2)  # (B,T), (B,T): first maximum in raster order on ties
    return scores, best, max_score


# --------------------------------------------------------------------------------------------
# Generate: the hole patches in raster order, each a blend of m_{i-1} and its match
# --------------------------------------------------------------------------------------------
def coherent_chain(m_bar: Tensor, q: Tensor, d_max: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The generate step: m̄ (B,T,C), q = x̂ at the hole cells (B,T,C), D_max (B,T), valid (B,T) bool
    -> generated m (B,T,C), a_new (B,T), a_ori (B,T) (a_new = 0, a_ori = 1 at the first hole cell).

    Per sample, over its T hole cells in raster order: m_1 = m̄_1, then m_i = a_new m_{i-1} + a_ori m̄_i
    with D_ad = <m_{i-1}, q_i> (module docstring). One autograd node (`engine.csa_chain.CoherentChain`:
    its torch loops, or Triton kernels on CUDA); entries at padded steps (valid False) are meaningless.
    """
    y, a, b = CoherentChain.apply(m_bar.transpose(0, 1), q.transpose(0, 1), d_max.t(), valid.t())
    return y.transpose(0, 1), a.t(), b.t()  # (B,T,C), (B,T), (B,T)


# --------------------------------------------------------------------------------------------
# The faithful forward, and its module form
# --------------------------------------------------------------------------------------------
MatchFn = Callable[[Tensor, int], Tensor]  # (known (B,N) bool, T) -> (B,T) raster indices of known cells


@dataclass
class CSAAttention:
    """What the CSA layer did, per feature cell (h, w = the feature map's size).

    Every output cell obeys  y_p = weight_prev[p] * y_prev(p) + weight_match[p] * x[match[p]],
    where y_prev(p) is the output at the previous hole cell in raster order.
    """

    hole: Tensor          # (B,h,w) bool, True = hole cell
    match: Tensor         # (B,h,w) long, raster index of the best known match (own index at known cells)
    weight_prev: Tensor   # (B,h,w) a_new = D_ad / (D_ad + D_max); 0 at known cells and the first hole
    weight_match: Tensor  # (B,h,w) a_ori = D_max / (D_ad + D_max); 1 at known cells and the first hole
    max_score: Tensor     # (B,h,w) D_max at hole cells, 0 at known cells
    order: Tensor         # (B,T) raster indices of the hole cells in generation order, -1 = padding
    scores: Tensor        # (B,T,h*w) search scores D(p, k) of each hole cell in `order`; -inf at hole candidates

    @property
    def size(self) -> tuple[int, int]:
        """(h, w) of the feature map."""
        return tuple(self.hole.shape[-2:])  # type: ignore[return-value]

    def score_map(self, sample: int, row: int, col: int) -> Tensor:
        """(h, w) search scores of hole cell (row, col) of `sample` over all cells (-inf at holes)."""
        h, w = self.size
        index = row * w + col
        found = (self.order[sample] == index).nonzero()
        if len(found) == 0:
            raise ValueError(f"cell ({row}, {col}) of sample {sample} is not a hole cell")
        return self.scores[sample, found[0, 0]].reshape(h, w)  # (h, w)


def coherent_semantic_attention(
    x: Tensor, hole: Tensor, return_attention: bool = False, match_fn: MatchFn | None = None
) -> Tensor | tuple[Tensor, CSAAttention]:
    """CSA forward: x (B,C,h,w), hole (B,1,h,w) bool -> y (B,C,h,w) [, CSAAttention].

    Batched search, then the raster-order coherent chain over each sample's own hole cells; known
    cells are unchanged. Exactly differentiable (the chain's backward: `engine.csa_chain`); works on
    any device and float dtype (half precision inputs are computed in float32 and cast back). A
    sample without holes is returned as is; a sample whose cells are all holes has nothing to copy
    from and raises ValueError.
    `match_fn` (ablations, `csa_lib.eval.ablation`) replaces the best matches k* by the known cells it
    picks; D_max keeps the search's value, so only the copied feature changes.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, h, w), got shape {tuple(x.shape)}")
    B, C, h, w = x.shape
    if hole.shape != (B, 1, h, w):
        raise ValueError(f"hole must be (B, 1, h, w) = {(B, 1, h, w)} to match x, got {tuple(hole.shape)}")
    hole = hole.to(device=x.device, dtype=torch.bool)
    out_dtype = x.dtype
    with torch.autocast(device_type=x.device.type, enabled=False):
        xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        y, attention = _csa(xc, hole.reshape(B, h * w), return_attention, match_fn)
    y = y.to(out_dtype)
    return (y, attention) if return_attention else y


def _csa(x: Tensor, hole: Tensor, return_attention: bool, match_fn: MatchFn | None = None
         ) -> tuple[Tensor, CSAAttention | None]:
    """Core of `coherent_semantic_attention` on float x (B,C,h,w) and flat hole (B,N)."""
    B, C, h, w = x.shape
    N = h * w
    known = ~hole  # (B,N)
    counts = hole.sum(dim=1)  # (B,)
    n_holes, n_known = counts.tolist(), known.sum(dim=1).tolist()
    for b in range(B):
        if n_holes[b] > 0 and n_known[b] == 0:
            raise ValueError(
                f"CSA: sample {b} has no known cell at the {h}x{w} feature level, so there is nothing to "
                "copy from; leave part of the image unmasked (at least one 8x8 block for a 256-px model)")
    T = max(n_holes)
    if T == 0:
        return x, (_empty_attention(x, hole) if return_attention else None)

    xf = x.flatten(2).transpose(1, 2)  # (B,N,C)
    x_hat = normalise_features(xf)  # (B,N,C) each vector over its norm
    # hole cells of each sample in raster order, padded to T: a stable sort puts holes first
    order = torch.argsort((~hole).to(torch.uint8), dim=1, stable=True)[:, :T]  # (B,T)
    valid = torch.arange(T, device=x.device)[None, :] < counts[:, None]  # (B,T)
    gather_idx = order[:, :, None].expand(B, T, C)  # (B,T,C)
    xq = xf.gather(1, gather_idx)  # (B,T,C) x_p at hole cells
    xq_hat = x_hat.gather(1, gather_idx)  # (B,T,C) x_p / ||x_p||

    # --- search: best known match m̄_p and D_max(p) ---
    scores, best, d_max = search_matches(xq, x_hat, known)  # (B,T,N), (B,T), (B,T)
    if match_fn is not None:  # an ablation's matches in place of the argmax (D_max unchanged)
        best = match_fn(known, T)  # (B,T)
    m_bar = xf.gather(1, best[:, :, None].expand(B, T, C))  # (B,T,C) original features of the matches

    # --- generate: the raster-order chain (a custom autograd function; one fused kernel on CUDA) ---
    generated, w_prev, w_match = coherent_chain(m_bar, xq_hat, d_max, valid)  # (B,T,C), (B,T), (B,T)

    # write the generated cells back; boolean indexing enumerates (b, raster index) in the same
    # order as the valid entries of `generated`
    yf = xf.clone()  # (B,N,C)
    yf[hole] = generated[valid]
    y = yf.transpose(1, 2).reshape(B, C, h, w)  # (B,C,h,w)
    if not return_attention:
        return y, None

    with torch.no_grad():
        flat_idx = torch.where(valid, order, torch.full_like(order, N))  # (B,T), N = a discard slot

        def to_map(values: Tensor, fill: float, dtype: torch.dtype) -> Tensor:
            """Scatter per-hole values (B,T) into a (B,h,w) map filled with `fill` elsewhere."""
            out = torch.full((B, N + 1), fill, dtype=dtype, device=x.device)
            out.scatter_(1, flat_idx, values.to(dtype))
            return out[:, :N].reshape(B, h, w)

        own = torch.arange(N, device=x.device).expand(B, N)
        match = torch.where(hole, to_map(best, 0, torch.long).reshape(B, N), own).reshape(B, h, w)
        attention = CSAAttention(
            hole=hole.reshape(B, h, w),
            match=match,
            weight_prev=to_map(w_prev, 0.0, x.dtype),
            weight_match=to_map(w_match, 1.0, x.dtype),
            max_score=to_map(d_max, 0.0, x.dtype),
            order=torch.where(valid, order, torch.full_like(order, -1)),
            scores=scores.detach(),
        )
    return y, attention


def _empty_attention(x: Tensor, hole: Tensor) -> CSAAttention:
    """Attention record of a batch without holes: every cell copies itself."""
    B, _, h, w = x.shape
    N = h * w
    zeros = torch.zeros(B, h, w, dtype=x.dtype, device=x.device)
    return CSAAttention(
        hole=hole.reshape(B, h, w),
        match=torch.arange(N, device=x.device).expand(B, N).reshape(B, h, w).clone(),
        weight_prev=zeros, weight_match=torch.ones_like(zeros), max_score=zeros.clone(),
        order=torch.empty(B, 0, dtype=torch.long, device=x.device),
        scores=torch.empty(B, 0, N, dtype=x.dtype, device=x.device),
    )


class CSALayer(nn.Module):
    """Parameter-free module form of `coherent_semantic_attention` (no weights, no state dict entries).

    Two plain attributes serve ablations (set them with `csa_lib.eval.ablation.csa_matches`): `enabled`
    False passes the input through (matches switched off), `match_fn` replaces the best matches.
    """

    def __init__(self) -> None:
        super().__init__()
        self.enabled, self.match_fn = True, None

    def forward(self, x: Tensor, hole: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, CSAAttention]:
        """x (B,C,h,w), hole (B,1,h,w) bool -> y (B,C,h,w), or (y, CSAAttention) with `return_attention`."""
        if not self.enabled:  # ablation: no search, no chain; the record says every cell copies itself
            return (x, _empty_attention(x, hole)) if return_attention else x
        return coherent_semantic_attention(x, hole, return_attention, self.match_fn)


# --------------------------------------------------------------------------------------------
# Elsewhere: the custom backward and the kernels
# --------------------------------------------------------------------------------------------
# `coherent_chain` hands the recurrence to `csa_lib/engine/`:
# - `engine/csa_chain.py`: the chain as one autograd function (`CoherentChain`), with the torch loops of
#   the forward and of its hand-written backward (the reverse recurrence, derived in its docstring);
#   `chain_backend` picks the loops or the kernels (CSA_TRITON=0 forces the loops).
# - `engine/csa_triton.py`: the same forward and backward as two Triton kernels, one program per sample.


# --------------------------------------------------------------------------------------------
# The slow literal reference (tests, benchmarks)
# --------------------------------------------------------------------------------------------
def coherent_semantic_attention_reference(x: Tensor, hole: Tensor) -> Tensor:
    """Slow literal CSA, one sample and one hole cell at a time, straight from the spec's pseudo-code.

    x (B,C,h,w), hole (B,1,h,w) bool -> (B,C,h,w). Kept as the reference for tests and benchmarks.
    """
    B, C, h, w = x.shape
    y = x.clone()
    for b in range(B):
        feats = [x[b, :, r, c] for r in range(h) for c in range(w)]  # raster order, each (C,)
        is_hole = [bool(hole[b, 0, r, c]) for r in range(h) for c in range(w)]
        known = [k for k in range(h * w) if not is_hole[k]]
        holes = [p for p in range(h * w) if is_hole[p]]
        if holes and not known:
            raise ValueError(f"sample {b} has no known cell")
        known_hat = torch.stack([feats[k] / (feats[k].norm() + EPS) for k in known]) if known else None
        prev = None
        for t, p in enumerate(holes):
            scores = known_hat @ feats[p]  # (K,)
            d_max, j = scores.max(dim=0)
            m_bar = feats[known[int(j)]]
            if t == 0:
                out = m_bar
            else:
                d_ad = prev @ (feats[p] / (feats[p].norm() + EPS))
                out = d_ad / (d_ad + d_max) * prev + d_max / (d_ad + d_max) * m_bar
            y[b, :, p // w, p % w] = out
            prev = out
    return y
