"""Plain-region crops for scripts/build_demo_data.py: walls, skies, paper, fog cut out of real photos.

The random training crops avoid flat regions (``random_patches`` redraws near-flat crops), and the
synthetic ``smooth_image`` flats carry made-up noise. These crops are the real thing: regions of a
training photo whose grey level changes only gently (shading) and whose fine detail is only the
photo's own noise and grain, scaled to ``size`` x ``size``.

The measure (``plain_stats``, on the final crop): ``std``, the grey-level standard deviation (gentle
shading, at most ``PLAIN_MAX_STD`` levels); ``detail``, the standard deviation of the grey level
less its 5 x 5 box mean, the largest of the three channels (texture and edges; at most
``PLAIN_MAX_DETAIL`` levels: what remains is noise and grain); ``clipped``, the share of pixels at
0 or 255 in any channel (blown-out skies are flat because the sensor clipped, not because the scene
was plain; at most ``PLAIN_MAX_CLIPPED``).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from demo_images import to_pil_rgb

PLAIN_MAX_STD = 14.0
PLAIN_MAX_DETAIL = 1.5
PLAIN_MAX_CLIPPED = 0.01
PLAIN_MEAN_RANGE = (12.0, 245.0)   # grey mean: leave out near-black and near-white crops
GREY = np.array([0.299, 0.587, 0.114], np.float32)


def _box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1) x (2r+1) square around each pixel (edges padded by reflection)."""
    p = np.pad(a, r, mode="reflect").astype(np.float64)
    c = np.cumsum(np.cumsum(p, 0), 1)
    c = np.pad(c, ((1, 0), (1, 0)))
    k = 2 * r + 1
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return s / (k * k)


def plain_stats(crop) -> dict:
    """``std``, ``detail`` and ``clipped`` of an RGB crop (see the module docstring), and its grey ``mean``."""
    arr = np.asarray(to_pil_rgb(crop), np.float32)
    grey = arr @ GREY
    detail = max(float((arr[..., c] - _box_mean(arr[..., c], 2)).std()) for c in range(3))
    clipped = float(((arr <= 0) | (arr >= 255)).any(-1).mean())
    return {"std": float(grey.std()), "detail": detail, "clipped": clipped, "mean": float(grey.mean())}


def is_plain(stats: dict) -> bool:
    lo, hi = PLAIN_MEAN_RANGE
    return (stats["std"] <= PLAIN_MAX_STD and stats["detail"] <= PLAIN_MAX_DETAIL
            and stats["clipped"] <= PLAIN_MAX_CLIPPED and lo <= stats["mean"] <= hi)


def _window_sums(integral: np.ndarray, s: int, stride: int) -> np.ndarray:
    """Sums of ``integral``'s source over every s x s window whose corner is on the stride grid."""
    h, w = integral.shape[0] - 1, integral.shape[1] - 1
    ys = np.arange(0, h - s + 1, stride)
    xs = np.arange(0, w - s + 1, stride)
    a = integral[np.ix_(ys + s, xs + s)] - integral[np.ix_(ys, xs + s)]
    return a - integral[np.ix_(ys + s, xs)] + integral[np.ix_(ys, xs)], ys, xs


def _integral(a: np.ndarray) -> np.ndarray:
    return np.pad(np.cumsum(np.cumsum(a.astype(np.float64), 0), 1), ((1, 0), (1, 0)))


def _cut(img: Image.Image, x: int, y: int, s: int, size: int) -> np.ndarray:
    crop = img.crop((x, y, x + s, y + s))
    if s != size:
        crop = crop.resize((size, size), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(crop))


def _grow(img: Image.Image, arr: np.ndarray, box: tuple[int, int, int], size: int, larger: list[int],
          boxes: list[tuple[int, int, int]], stored) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The largest plain window (of the ``larger`` sides) that contains ``box`` and overlaps none of ``boxes``.

    Small windows are the plainest, but a region scaled up loses its grain; so a plain one is grown
    when the larger square around it (aligned at its left/top, centre or right/bottom) is plain too.
    """
    x, y, s = box
    w, h = img.size
    for side in sorted(larger, reverse=True):
        for gy in sorted({min(max(0, v), h - side) for v in (y, y + (s - side) // 2, y + s - side)}):
            for gx in sorted({min(max(0, v), w - side) for v in (x, x + (s - side) // 2, x + s - side)}):
                if any(gx < bx + bs and bx < gx + side and gy < by + bs and by < gy + side for bx, by, bs in boxes):
                    continue
                grown = _cut(img, gx, gy, side, size)
                if is_plain(plain_stats(stored(grown))):
                    return grown, (gx, gy, side)
    return arr, box


def plain_crops(image, size: int = 256, per_photo: int = 2, min_side: int = 200,
                n_sides: int = 6, max_checks: int = 80, stored=None) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """Up to ``per_photo`` plain square regions of ``image``, each scaled to ``size`` x ``size``.

    Returns ``(crop, (x, y, side))`` pairs, the box in ``image``'s pixels. Square windows of
    ``n_sides`` sides from the short side down to ``min_side`` (never below: a region is not enlarged
    more than ``size / min_side`` times, which would smooth its noise away) are scored on ``image``
    itself: the mean squared difference of the grey level from its 5 x 5 mean (detail) and the grey
    variance (shading). The least detailed windows that pass are cut, scaled and checked with
    ``plain_stats`` / ``is_plain`` (at most ``max_checks``), and each plain one is grown to the largest
    plain square around it (``_grow``); the chosen regions do not overlap. ``stored`` (default: none)
    maps a crop to what will be read back from disk (``jpeg_roundtrip`` for JPEG files), so that the
    crop is plain as stored. Deterministic.
    """
    if stored is None:
        def stored(a):
            return a
    img = to_pil_rgb(image)
    w, h = img.size
    short = min(w, h)
    if short < min_side:
        return []
    grey = np.asarray(img, np.float32) @ GREY
    hf = grey - _box_mean(grey, 2)
    i_hf2, i_g, i_g2 = _integral(hf * hf), _integral(grey), _integral(grey * grey)
    sides = sorted({int(round(v)) for v in np.geomspace(short, min_side, n_sides)}, reverse=True)
    cands = []
    for s in sides:
        stride = max(4, s // 8)
        hf2, ys, xs = _window_sums(i_hf2, s, stride)
        g, _, _ = _window_sums(i_g, s, stride)
        g2, _, _ = _window_sums(i_g2, s, stride)
        n = float(s * s)
        detail2 = hf2 / n
        var = g2 / n - (g / n) ** 2
        # the full-resolution detail of a window shrinks when it is scaled down to size: be lenient here,
        # the scaled crop is checked exactly below
        ok = (detail2 <= (3 * PLAIN_MAX_DETAIL) ** 2) & (var <= (1.2 * PLAIN_MAX_STD) ** 2)
        for iy, ix in zip(*np.nonzero(ok)):
            cands.append((float(detail2[iy, ix]), -s, int(xs[ix]), int(ys[iy])))
    cands.sort()
    out, boxes, checks = [], [], 0
    for _, neg_s, x, y in cands:
        s = -neg_s
        if any(x < bx + bs and bx < x + s and y < by + bs and by < y + s for bx, by, bs in boxes):
            continue
        checks += 1
        if checks > max_checks:
            break
        arr = _cut(img, x, y, s, size)
        if not is_plain(plain_stats(stored(arr))):
            continue
        arr, (x, y, s) = _grow(img, arr, (x, y, s), size, [v for v in sides if v > s], boxes, stored)
        out.append((arr, (x, y, s)))
        boxes.append((x, y, s))
        if len(out) >= per_photo:
            break
    return out


def plain_plan(photos: list[dict], n: int, size: int, max_short: int, seed: int, per_photo: int = 2,
               load=None, stored=None) -> list[dict]:
    """Up to ``n`` plain crops of ``photos`` (training photos only): dicts with the photo, its ``box`` and ``crop``.

    Every photo (decoded with ``load(path, max_short)``, as for the random crops) gives at most
    ``per_photo`` regions (``plain_crops``); when there are more than ``n`` in all, ``n`` are drawn with
    ``seed``, so the set does not depend on the order the photos were found in.
    """
    if load is None:
        raise ValueError("plain_plan needs load=(path, max_short) -> PIL image (demo_photos.load_photo)")
    found = []
    for ph in sorted(photos, key=lambda p: p.get("key", p["name"])):
        if ph["split"] != "train":
            raise ValueError(f"plain crops come from training photos only; {ph['name']} is {ph['split']!r}")
        img = load(ph["path"], max_short)
        for crop, box in plain_crops(img, size, per_photo, stored=stored):
            found.append({"photo": ph, "box": box, "decoded": img.size, "crop": crop})
    if len(found) > n:
        keep = np.sort(np.random.default_rng([seed, 11]).choice(len(found), n, replace=False))
        found = [found[i] for i in keep]
    return found
