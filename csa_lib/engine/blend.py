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

Only the hole's bounding box plus ``MARGIN`` known pixels on each side is solved, so the cost
follows the hole, not the photo. This is exact, not an approximation: a hole pixel's equation
involves only its 4 neighbours, and with a margin of one pixel or more every neighbour of every hole
pixel lies inside the box (or outside the image, as before), so the box holds the very same linear
system. The wider margin only gives the coarse levels of the pyramid some context for their start.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import holes

COARSEST = 32  # below this size the pyramid stops and CG starts from the known pixels' mean
MARGIN = 16    # known pixels kept around the hole's bounding box (>= 1 keeps the system exact)


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
    return holes.composite(u, values, hole)  # (C,H,W) harmonic inside, values outside


def hole_box(hole: Tensor, margin: int | None = None) -> tuple[slice, slice] | None:
    """(rows, cols) slices of the `hole` (H,W bool) bounding box grown by `margin` (None = MARGIN), clipped.

    None when there is no hole. One pass over the whole mask (its rows), then only over the rows the
    hole spans.
    """
    margin = MARGIN if margin is None else margin
    rows = torch.nonzero(hole.any(dim=1))[:, 0]  # (n,) rows holding a hole pixel
    if rows.numel() == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    cols = torch.nonzero(hole[top:bottom].any(dim=0))[:, 0]  # (m,) columns holding a hole pixel
    H, W = hole.shape
    return (slice(max(0, top - margin), min(H, bottom + margin)),
            slice(max(0, int(cols[0]) - margin), min(W, int(cols[-1]) + 1 + margin)))


def harmonic_fill(values: Tensor, hole: Tensor, tol: float = 1e-3, max_iter: int = 300) -> Tensor:
    """`values` (C,H,W) with the `hole` (H,W bool) pixels replaced by the harmonic interpolation of the rest.

    `tol` is the RMS residual per hole pixel, in the units of `values`; `max_iter` caps the CG steps at
    each pyramid level (photos converge in tens; what a cap leaves is local, next to the hole's border).
    Needs one known pixel at least.
    """
    if values.dim() != 3 or hole.shape != values.shape[1:]:
        raise ValueError(f"values must be (C,H,W) and hole (H,W); got {tuple(values.shape)} and {tuple(hole.shape)}")
    hole = hole.bool()
    box = hole_box(hole)
    if box is None:
        return values
    rows, cols = box
    if bool(hole[rows, cols].all()):
        raise ValueError("the hole covers the whole image: a harmonic fill needs one known pixel at least")
    if (rows.stop - rows.start, cols.stop - cols.start) != tuple(hole.shape):  # solve in the box only
        out = values.clone()
        out[:, rows, cols] = _pyramid_fill(values[:, rows, cols], hole[rows, cols], tol, max_iter)
        return out
    return _pyramid_fill(values, hole, tol, max_iter)


def _pyramid_fill(values: Tensor, hole: Tensor, tol: float, max_iter: int) -> Tensor:
    """harmonic_fill on the whole of `values` (C,H,W): CG started from the half-resolution solution."""
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


def poisson_blend(fill: Tensor, image: Tensor, hole: Tensor, tol: float = 1e-3, gain: Tensor | None = None,
                  out: Tensor | None = None) -> Tensor:
    """`fill`'s gradients inside `hole`, `image`'s values outside, no seam: (C,H,W), (C,H,W), (H,W) -> (C,H,W).

    Only the known pixels of `image` are read; a fill that differs from the truth by a constant
    comes back as the truth. Work beyond one copy of `image` is confined to the hole's box (`hole_box`).
    The result is the membrane of the known pixels plus the fill's detail D = fill - the membrane of
    the fill's own border values (D = 0 on the hole's border). `gain` (H,W) in [0, 1], if given,
    scales D pixel by pixel: 0 leaves the membrane fill, 1 the plain blend, and no seam either way.
    `out`: where the result goes (default a new tensor, one copy of `image`); ``out=image`` blends in
    place, so on a big photo only the hole's box is ever touched.
    """
    if fill.shape != image.shape or image.dim() != 3 or hole.shape != image.shape[1:]:
        raise ValueError(f"fill and image must be (C,H,W) and hole (H,W); got {tuple(fill.shape)}, "
                         f"{tuple(image.shape)} and {tuple(hole.shape)}")
    if gain is not None and gain.shape != hole.shape:
        raise ValueError(f"gain must be (H,W) = {tuple(hole.shape)}, got {tuple(gain.shape)}")
    if out is not None and out.shape != image.shape:
        raise ValueError(f"out must be (C,H,W) = {tuple(image.shape)}, got {tuple(out.shape)}")
    hole = hole.bool()
    box = hole_box(hole)
    rows, cols = box if box is not None else (slice(0, 0), slice(0, 0))
    f, known, inside = fill[:, rows, cols], image[:, rows, cols].clone(), hole[rows, cols]  # the box only
    if out is None:
        out = image.clone()  # (C,H,W)
    elif out is not image:
        out.copy_(image)
    if box is None:
        return out
    correction = harmonic_fill(known - f, inside, tol)  # image - fill outside the hole, harmonic inside
    blended = f + correction
    if gain is not None:  # take back (1 - gain) of the fill's detail
        detail = f - harmonic_fill(f, inside, tol)  # (C,h,w), 0 outside the hole
        blended = blended - (1 - gain[rows, cols].to(f.dtype))[None] * detail
    out[:, rows, cols] = holes.composite(blended, known, inside)  # (C,h,w)
    return out


RING = 1 / 16  # width of the known ring whose roughness `detail_gain` reads, as a share of the longer side


def _laplacian(values: Tensor) -> Tensor:
    """(C,H,W) -> (C,H-2,W-2): the 4-neighbour Laplacian of the interior pixels."""
    centre = values[:, 1:-1, 1:-1]
    return 4 * centre - values[:, :-2, 1:-1] - values[:, 2:, 1:-1] - values[:, 1:-1, :-2] - values[:, 1:-1, 2:]


def roughness(values: Tensor, region: Tensor) -> float:
    """RMS of the 4-neighbour Laplacian of `values` (C,H,W) over the interior pixels in `region` (H,W bool).

    0 on flat colours and on linear ramps (a sky gradient); it grows with texture, noise, spots and
    bowls. NaN when `region` holds no interior pixel.
    """
    inner = region[1:-1, 1:-1]
    if not bool(inner.any()):
        return float("nan")
    return float(_laplacian(values)[:, inner].pow(2).mean().sqrt())


FLAT = 1e-6  # a fill roughness below this (values in [-1, 1]; 1 level is 0.008) is float rounding, no detail
SCALES = (1, 2, 4)  # pixel scales at which `detail_gain` compares roughness (noise shows at 1, bowls and spots at 2-4)


def detail_gain(fill: Tensor, image: Tensor, hole: Tensor, ring: float = RING, scales: tuple[int, ...] = SCALES) -> float:
    """How much of the fill's own detail to keep, in [0, 1]: the smallest ratio, over pixel scales, of the
    roughness of the known ring around the hole to the roughness of the fill inside it, capped at 1.

    `fill` and `image` (C,H,W) at one resolution (the network's), `hole` (H,W bool). A fill no rougher
    than the pixels around the hole keeps all its detail (1); one rougher than them at some scale (a
    spot, a tint that varies, a bowl painted into a plain sky) is scaled down to their roughness, and
    on a flat colour or a linear gradient to nothing, so the blend becomes the smooth membrane fill
    that is right there. Several scales, because the noise of a plain sky is rough at 1 px and
    smooth at 4, where a painted bowl is not. At scale s both are averaged over s x s blocks first;
    the ring is the known pixels within `ring` x the longer side of the hole (at least 2 px at s = 1)
    whose blocks and 4 neighbours are known too, the hole's blocks are those wholly inside it. Scales
    with no such pixel are left out; 1 when none is left.
    """
    hole = hole.bool()
    width = max(2, round(ring * max(hole.shape)))
    h = hole[None, None].float()  # (1,1,H,W)
    near = F.max_pool2d(h, 2 * width + 1, stride=1, padding=width)  # within `width` of the hole
    gain = 1.0
    for s in scales:
        if min(hole.shape) < 3 * s:
            continue
        f, v = F.avg_pool2d(fill[None], s)[0], F.avg_pool2d(image[None], s)[0]  # (C,H/s,W/s)
        hs = F.avg_pool2d(h, s)  # (1,1,H/s,W/s) share of hole pixels per block
        touching = F.max_pool2d(hs, 3, stride=1, padding=1) > 0  # a block with hole in it or next to it
        ring_blocks = (F.max_pool2d(near, s) > 0) & ~touching
        fill_rough = roughness(f, (hs == 1)[0, 0])
        ring_rough = roughness(v, ring_blocks[0, 0])
        if fill_rough > FLAT and ring_rough == ring_rough:  # both measured, and the fill has detail
            gain = min(gain, ring_rough / fill_rough)
    return min(1.0, gain)


def _blur(x: Tensor, sigma: float) -> Tensor:
    """(N,1,H,W) -> (N,1,H,W): a separable Gaussian blur, zero outside (for normalised averages)."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, radius))
    return F.conv2d(x, k.view(1, 1, -1, 1), padding=(radius, 0))


def detail_gain_map(fill: Tensor, image: Tensor, hole: Tensor, reach: float = RING,
                    scales: tuple[int, ...] = SCALES) -> Tensor:
    """`detail_gain` pixel by pixel: (H,W) in [0, 1], the known pixels' roughness near each pixel over the fill's.

    At each scale s, |Laplacian| of the fill (blocks wholly in the hole) and of the known pixels
    (blocks not touching it) are averaged with a Gaussian of sigma `reach` x the longer side, each
    normalised by its own weight, so a hole pixel compares with the known pixels nearest to it: a hole
    across a white wall and a hedge keeps the fill's detail by the hedge and not on the wall. The
    smallest ratio over the scales, capped at 1; 1 where either side is not measured. (Mean absolute
    values, not RMS: a few very rough pixels nearby must not vouch for a whole plain area.)
    """
    hole = hole.bool()
    H, W = hole.shape
    gain = torch.ones(1, 1, H, W, dtype=fill.dtype, device=fill.device)
    h = hole[None, None].to(fill.dtype)
    for s in scales:
        if min(H, W) < 3 * s:
            continue
        hs = F.avg_pool2d(h, s)  # (1,1,H/s,W/s) share of hole pixels per block
        inner = (hs == 1)[..., 1:-1, 1:-1].to(fill.dtype)  # blocks wholly in the hole (interior)
        known = (F.max_pool2d(hs, 3, stride=1, padding=1) == 0)[..., 1:-1, 1:-1].to(fill.dtype)
        sigma = max(1.0, reach * max(H, W) / s)

        def local_mean_abs_laplacian(values: Tensor, where: Tensor) -> tuple[Tensor, Tensor]:
            lap = _laplacian(F.avg_pool2d(values[None], s)[0]).abs().mean(0)[None, None]  # (1,1,h-2,w-2)
            weight = _blur(where, sigma)
            return _blur(lap * where, sigma) / weight.clamp_min(1e-12), weight

        fill_rough, fill_weight = local_mean_abs_laplacian(fill, inner)
        ring_rough, ring_weight = local_mean_abs_laplacian(image, known)
        measured = (fill_rough > FLAT) & (fill_weight > 1e-6) & (ring_weight > 1e-6)
        ratio = torch.where(measured, ring_rough / fill_rough.clamp_min(FLAT), torch.ones_like(fill_rough))
        ratio = F.pad(ratio, (1, 1, 1, 1), mode="replicate")  # (1,1,H/s,W/s)
        gain = torch.minimum(gain, F.interpolate(ratio, size=(H, W), mode="bilinear", align_corners=False))
    return gain[0, 0].clamp(0, 1)


OFFSET_REACH = 0.2  # sigma of `fill_offset`'s local average, as a share of the longer side of the image


def fill_offset(fill: Tensor, hole: Tensor, reach: float = OFFSET_REACH, tol: float = 1e-3) -> Tensor:
    """The smooth colour offset a fill adds to its own border: (C,H,W), (H,W) -> (C,H,W), 0 outside the hole.

    The fill's detail D = fill - the membrane of its border values (`poisson_blend`'s D) holds texture,
    edges, and also a smooth shift of the whole hole away from its border: the tint a small network
    paints over plain walls and skies, with the band of border pixels it gets right (the "frame").
    A Poisson blend pins the border to the known pixels and so carries that shift into the photo as a
    colour cast. This is D's local mean over the hole pixels, a Gaussian of sigma `reach` x the longer
    side, normalised by the hole's own weight (within one small hole: its mean; across a big one:
    it follows a slow change). `fill - fill_offset(...)` keeps the texture and drops the cast.
    """
    hole = hole.bool()
    if not bool(hole.any()):
        return torch.zeros_like(fill)
    inside = hole.to(fill.dtype)[None]  # (1,H,W)
    detail = (fill - harmonic_fill(fill, hole, tol)) * inside  # (C,H,W), 0 outside the hole
    sigma = max(1.0, reach * max(hole.shape))
    weight = _blur(inside[None], sigma)[0]  # (1,H,W)
    local_mean = _blur(detail[:, None], sigma)[:, 0] / weight.clamp_min(1e-12)  # (C,H,W)
    return local_mean * inside
