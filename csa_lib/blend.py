"""Gradient-domain (Poisson) blending of a generated fill into the known part of an image.

The generator's fill can be right in texture and still off in colour or brightness at the border
of the hole (a small model trained on few photos has a tint). Poisson blending (Pérez, Gangnet and
Blake, "Poisson Image Editing", SIGGRAPH 2003; used as the post-processing step of Iizuka et al.,
"Globally and Locally Consistent Image Completion", 2017) keeps the fill's gradients inside the
hole and takes its boundary values from the known pixels. Written as a correction: the result is
``fill + c``, where ``c`` is the harmonic function (discrete Laplace equation, 4-neighbours) inside
the hole that equals ``image - fill`` on the known pixels around it; the image border is a
zero-flux (Neumann) boundary.

The solver is conjugate gradients on the hole pixels, started from the same problem solved at
half the resolution (recursively down to ``COARSEST`` pixels), so big holes on big photos need few
iterations at full size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

COARSEST = 32  # below this size the pyramid stops and CG starts from the known pixels' mean


def _neighbour_sum(x: Tensor) -> Tensor:
    """(C,H,W) -> (C,H,W): the sum of each pixel's 4 neighbours, counting outside the image as 0."""
    p = F.pad(x[None], (1, 1, 1, 1))[0]  # (C,H+2,W+2)
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]


def _conjugate_gradients(values: Tensor, hole: Tensor, start: Tensor, tol: float, max_iter: int) -> Tensor:
    """Solve the Laplace equation on `hole` (H,W bool) with `values` (C,H,W) fixed elsewhere; CG from `start`.

    For hole pixel p: deg(p) u_p - sum of hole neighbours u_q = sum of known neighbours values_q,
    deg(p) = its neighbours inside the image. The matrix is symmetric positive definite when every
    4-connected hole region touches a known pixel (true whenever one known pixel exists).
    Stops when the RMS residual per hole pixel is below `tol` (values' units) in every channel.
    """
    inside = hole.to(values.dtype)[None]  # (1,H,W)
    degree = _neighbour_sum(torch.ones_like(inside))  # (1,H,W)

    def laplacian(u: Tensor) -> Tensor:
        return (degree * u - _neighbour_sum(u * inside)) * inside  # (C,H,W)

    u = start * inside  # (C,H,W)
    r = _neighbour_sum(values * (1 - inside)) * inside - laplacian(u)  # residual b - A u
    p = r.clone()
    rs = (r * r).sum(dim=(1, 2))  # (C,)
    limit = (tol ** 2) * inside.sum().clamp_min(1)
    for _ in range(max_iter):
        if bool((rs <= limit).all()):
            break
        ap = laplacian(p)  # (C,H,W)
        alpha = rs / (p * ap).sum(dim=(1, 2)).clamp_min(torch.finfo(values.dtype).tiny)  # (C,)
        u = u + alpha[:, None, None] * p
        r = r - alpha[:, None, None] * ap
        rs_new = (r * r).sum(dim=(1, 2))
        p = r + (rs_new / rs.clamp_min(torch.finfo(values.dtype).tiny))[:, None, None] * p
        rs = rs_new
    return torch.where(hole[None], u, values)


def harmonic_fill(values: Tensor, hole: Tensor, tol: float = 1e-3, max_iter: int = 300) -> Tensor:
    """`values` (C,H,W) with the `hole` (H,W bool) pixels replaced by the harmonic interpolation of the rest.

    `tol` is the RMS residual per hole pixel, in the units of `values`; `max_iter` caps the CG steps at
    each pyramid level (photos converge in tens; what a cap leaves is local, next to the hole's border).
    Needs one known pixel at least.
    """
    if values.dim() != 3 or hole.shape != values.shape[1:]:
        raise ValueError(f"values must be (C,H,W) and hole (H,W); got {tuple(values.shape)} and {tuple(hole.shape)}")
    hole = hole.bool()
    if not bool(hole.any()):
        return values
    if bool(hole.all()):
        raise ValueError("the hole covers the whole image: a harmonic fill needs one known pixel at least")
    H, W = hole.shape
    known = (~hole).to(values.dtype)[None]  # (1,H,W)
    if max(H, W) > COARSEST:
        # Half resolution: a coarse pixel is known when any of its (up to) 2x2 fine pixels is known.
        pad = (0, W % 2, 0, H % 2)
        known_sum = F.avg_pool2d(F.pad(known, pad)[None], 2)[0]  # (1,h,w) share of known pixels
        value_sum = F.avg_pool2d(F.pad(values * known, pad)[None], 2)[0]  # (C,h,w)
        coarse = harmonic_fill(value_sum / known_sum.clamp_min(1e-12), known_sum[0] == 0, tol, max_iter)
        start = F.interpolate(coarse[None], scale_factor=2, mode="bilinear", align_corners=False)[0, :, :H, :W]
    else:
        mean = (values * known).sum(dim=(1, 2)) / known.sum()  # (C,)
        start = mean[:, None, None].expand_as(values)
    return _conjugate_gradients(values, hole, start, tol, max_iter)


def poisson_blend(fill: Tensor, image: Tensor, hole: Tensor, tol: float = 1e-3) -> Tensor:
    """`fill`'s gradients inside `hole`, `image`'s values outside, no seam: (C,H,W), (C,H,W), (H,W) -> (C,H,W).

    Only the known pixels of `image` are read; a fill that differs from the truth by a constant
    comes back as the truth.
    """
    correction = harmonic_fill(image - fill, hole, tol)  # (C,H,W): image - fill outside, harmonic inside
    return torch.where(hole.bool()[None], fill + correction, image)
