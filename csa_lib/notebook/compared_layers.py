"""The layers CSA is compared with in the classroom walkthrough, with 1x1 patches (for teaching).

`contextual_attention` is the softmax blend of known features of Yu et al. (2018); `shift_copy` is
the Shift-Net shift of Yan et al. (2018), a copy of the best match without CSA's coherence chain.
Both score the known cells with the CSA layer's own search (`csa_layer.search_matches`), so the
three differ only in what they do with the scores.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..csa_layer import normalise_features, search_matches

__all__ = ["contextual_attention", "shift_copy"]


def _flat(x: Tensor, hole: Tensor) -> tuple[Tensor, Tensor]:
    """x (B,C,h,w), hole (B,1,h,w) -> features (B,N,C) and flat hole (B,N) bool; ValueError on a shape mismatch."""
    B, C, h, w = x.shape
    if hole.shape != (B, 1, h, w):
        raise ValueError(f"hole must be (B,1,h,w) = {(B, 1, h, w)}, got {tuple(hole.shape)}")
    return x.flatten(2).transpose(1, 2), hole.reshape(B, h * w).bool()  # (B,N,C), (B,N)


def contextual_attention(x: Tensor, hole: Tensor, scale: float = 10.0) -> Tensor:
    """Contextual attention with 1x1 patches: each hole cell = softmax(scale * cosine)-weighted mean of known cells.

    x (B,C,h,w), hole (B,1,h,w) bool -> (B,C,h,w); known cells unchanged. Yu et al. (2018) use 3x3
    patches and scale 10; the blend is soft, and each hole cell is computed independently.
    """
    xf, hf = _flat(x, hole)  # (B,N,C), (B,N)
    x_hat = normalise_features(xf)  # (B,N,C)
    cosine, _, _ = search_matches(x_hat, x_hat, ~hf)  # (B,N,N) CSA's score with the query normalised too
    logits = (scale * cosine).masked_fill(hf[:, None, :], float("-inf"))  # masked again: 0 * -inf is nan
    weights = F.softmax(logits, dim=2)  # (B,N,N)
    blended = torch.bmm(weights, xf)  # (B,N,C)
    yf = torch.where(hf[:, :, None], blended, xf)  # (B,N,C)
    return yf.transpose(1, 2).reshape(x.shape)  # (B,C,h,w)


def shift_copy(x: Tensor, hole: Tensor) -> Tensor:
    """Shift-Net-style shift with 1x1 patches: each hole cell copies its best-matching known cell, no coherence.

    x (B,C,h,w), hole (B,1,h,w) bool -> (B,C,h,w); known cells unchanged. The match is CSA's own
    (the argmax of its half-normalised score, which is also the argmax of the cosine).
    """
    xf, hf = _flat(x, hole)  # (B,N,C), (B,N)
    _, best, _ = search_matches(xf, normalise_features(xf), ~hf)  # (B,N) best known match of every cell
    copied = xf.gather(1, best[:, :, None].expand_as(xf))  # (B,N,C)
    yf = torch.where(hf[:, :, None], copied, xf)  # (B,N,C)
    return yf.transpose(1, 2).reshape(x.shape)  # (B,C,h,w)
