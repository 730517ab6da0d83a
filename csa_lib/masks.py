"""Hole masks: the original's centre square, procedural irregular masks, mask folders.

Convention everywhere: a mask is float32 with **1 = hole** (pixels to fill) and **0 = known**.
Generators that work on one mask in NumPy return ``(H, W)`` arrays; the tensor side uses
``(1, H, W)`` per sample and ``(B, 1, H, W)`` per batch. Mask image files use white = hole.

Masks from files are read by ``csa_lib.imageio`` and binarised by its one mask rule (at least half
intensity is a hole: grey >= 128, floats > 0.5) after resizing. The original truncated with
``.byte()``, so only exact white became a hole and soft edges stayed known
(``docs/csa_spec.md`` §7); the threshold is this project's fix. Strokes recorded by the mask painter
are rasterised by ``csa_lib.recorded_strokes``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from csa_lib import holes, imageio
from csa_lib.config import MASK_TYPES

__all__ = [
    "HOLE_BUCKETS", "MASK_EXTENSIONS", "MaskSource", "apply_mask", "center_mask", "find_mask_files",
    "hole_ratio", "irregular_mask", "load_mask", "random_box_mask", "random_irregular_mask", "stroke_mask",
]

HOLE_BUCKETS: tuple[tuple[float, float], ...] = (
    (0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6),
)
"""Hole-area buckets of 10 % (share of hole pixels): irregular masks are drawn per bucket here, and
`csa_lib.eval.metrics` groups evaluation results by the same buckets."""

MASK_EXTENSIONS: tuple[str, ...] = imageio.IMAGE_EXTENSIONS
"""File endings (case-insensitive) that a mask folder is searched for: the library's one image list."""

_MAX_PRIMITIVES = 2000   # strokes/boxes tried before giving up on a hole range (never reached for the buckets)
_BOX_PROBABILITY = 0.15  # share of primitives that are axis-aligned boxes instead of brush strokes
_SHRINK = 0.7            # stroke/box scale factor after a primitive overshoots the range


def center_mask(size: int, overlap: int | None = None) -> torch.Tensor:
    """The centre hole -> float32 (1, size, size), rows/cols size/4+o .. 3*size/4-o-1; the library's one.

    ``overlap`` o defaults to the original's size//64: at 256 px (overlap 4) the hole is rows and
    columns 68..187 inclusive (120 x 120). ``overlap=0`` is the half-side square (64..191 at 256 px).
    """
    if size < 4:
        raise ValueError(f"center_mask needs size >= 4, got {size}")
    overlap = size // 64 if overlap is None else overlap
    if not 0 <= overlap < size // 4:
        raise ValueError(f"center_mask needs 0 <= overlap < size/4 = {size // 4}, got {overlap}")
    lo, hi = size // 4 + overlap, 3 * size // 4 - overlap  # hole = [lo, hi)
    mask = torch.zeros(1, size, size)  # (1, size, size)
    mask[:, lo:hi, lo:hi] = 1.0
    return mask


def _check_range(hole_range: Sequence[float]) -> tuple[float, float]:
    lo, hi = float(hole_range[0]), float(hole_range[1])
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"hole_range must satisfy 0 <= lo < hi <= 1, got {tuple(hole_range)}")
    return lo, hi


def _draw_stroke(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, width: float,
                 scale: float) -> None:
    """One thick random-walk polyline with round joints and caps, painted 255."""
    radius = max(0.5, 0.5 * width * scale)
    step = size * rng.uniform(0.04, 0.12) * max(scale, 0.25)
    x, y = rng.uniform(0, size - 1, size=2)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    points = [(x, y)]
    for _ in range(int(rng.integers(3, 10))):
        angle += rng.normal(0.0, 0.8)
        nx, ny = x + step * math.cos(angle), y + step * math.sin(angle)
        if not (0 <= nx <= size - 1 and 0 <= ny <= size - 1):  # bounce off the border
            angle += math.pi
            nx, ny = x + step * math.cos(angle), y + step * math.sin(angle)
        x, y = min(max(nx, 0.0), size - 1.0), min(max(ny, 0.0), size - 1.0)
        points.append((x, y))
    draw.line(points, fill=255, width=max(1, round(2 * radius)))
    for px, py in points:
        draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=255)


def _draw_box(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, scale: float) -> None:
    """One axis-aligned filled box, painted 255."""
    w, h = size * rng.uniform(0.05, 0.25, size=2) * scale
    x, y = rng.uniform(0, size - 1, size=2)
    draw.rectangle([x - w / 2, y - h / 2, x + w / 2, y + h / 2], fill=255)


def random_irregular_mask(size: int, rng: np.random.Generator,
                          hole_range: Sequence[float] = (0.1, 0.2)) -> np.ndarray:
    """Brush strokes and a few boxes until the hole ratio is in [lo, hi) -> float32 (size, size), 1 = hole.

    Primitives are added one at a time; one that would push the ratio past ``hi`` is dropped and the
    next ones are drawn smaller, so every range of reasonable width is hit. The ratio lands on a
    target drawn uniformly inside the range (a small margin keeps it off both edges, so it is never 0).
    The same ``rng`` state gives the same mask.
    """
    lo, hi = _check_range(hole_range)
    total = size * size
    margin = max(0.02 * (hi - lo), 1.0 / total)
    lo_ok, hi_ok = lo + margin, hi - margin
    if lo_ok > hi_ok or math.ceil(lo_ok * total) > math.floor(hi_ok * total):
        raise ValueError(f"hole_range {tuple(hole_range)} is too narrow for a {size} x {size} mask")
    target = rng.uniform(lo_ok, hi_ok)
    width = size * (rng.uniform(0.02, 0.05) + 0.08 * target)  # larger holes use thicker brushes
    canvas = Image.new("L", (size, size), 0)
    scale, current = 1.0, 0.0
    for _ in range(_MAX_PRIMITIVES):
        trial = canvas.copy()
        draw = ImageDraw.Draw(trial)
        if rng.random() < _BOX_PROBABILITY:
            _draw_box(draw, rng, size, scale)
        else:
            _draw_stroke(draw, rng, size, width, scale)
        hole = holes.hole_of(trial)  # (size, size) bool
        ratio = np.count_nonzero(hole) / total
        if ratio > hi_ok:  # overshoot: drop it; already inside the range is good enough, else draw smaller
            if current >= lo_ok:
                return holes.hole_of(canvas).astype(np.float32)
            scale *= _SHRINK
            continue
        canvas, current = trial, ratio
        if ratio >= target:
            return hole.astype(np.float32)
    raise RuntimeError(f"could not reach a hole ratio in {tuple(hole_range)} at {size} px "
                       f"after {_MAX_PRIMITIVES} strokes")


def stroke_mask(size: int = 256, ratio_range: Sequence[float] = (0.2, 0.3), seed: int = 0,
                max_attempts: int = 200) -> np.ndarray:
    """Seeded free-form brush strokes with a hole ratio in ``ratio_range`` -> float32 (size, size), 1 = hole.

    The generator of the committed sample masks (``data/samples/masks/irregular_*.png``, written by
    ``scripts/build_demo_data.py --samples``). Strokes are random polylines (4-10 vertices, 15-45 px
    steps, 9-27 px wide at 256 px, round joints; they may run off the frame), added until the ratio
    reaches a target drawn from the band; an attempt that overshoots the band is redrawn with the same
    generator, so the result depends only on ``seed``.
    """
    lo, hi = float(ratio_range[0]), float(ratio_range[1])
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"bad ratio_range {tuple(ratio_range)}: need 0 < lo < hi < 1")
    rng = np.random.default_rng(seed)
    k = size / 256.0
    for _ in range(max_attempts):
        target = rng.uniform(lo + 0.2 * (hi - lo), hi - 0.2 * (hi - lo))
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        hole, ratio = np.zeros((size, size), bool), 0.0
        while ratio < target:
            width = int(round(rng.uniform(9, 27) * k))
            x, y = rng.uniform(0, size, size=2)
            angle = rng.uniform(0, 2 * math.pi)
            points = [(x, y)]
            for _ in range(int(rng.integers(4, 11))):
                angle += rng.uniform(-math.pi / 3, math.pi / 3)
                step = rng.uniform(15, 45) * k
                x, y = x + step * math.cos(angle), y + step * math.sin(angle)  # may leave the frame
                points.append((x, y))
            draw.line(points, fill=255, width=width, joint="curve")
            r = width / 2.0
            for px, py in (points[0], points[-1]):
                draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
            hole = holes.hole_of(canvas)  # (size, size) bool
            ratio = float(hole.mean())
        if lo <= ratio <= hi:
            return hole.astype(np.float32)
    raise RuntimeError(f"could not draw a mask with hole ratio in {tuple(ratio_range)} (seed {seed})")


def random_box_mask(size: int, rng: np.random.Generator, side_range: Sequence[float] = (0.15, 0.65)) -> np.ndarray:
    """One filled rectangle of random size and position -> float32 (size, size), 1 = hole.

    Its height and width are drawn independently, uniformly in ``side_range`` times ``size`` (at least
    one pixel), and it lies wholly inside the image. Unlike the original's centre hole, its position
    varies, so a model trained on it cannot learn a fixed picture for one place in the frame.
    """
    lo, hi = _check_range(side_range)
    h, w = (max(1, round(size * rng.uniform(lo, hi))) for _ in range(2))
    top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    mask = np.zeros((size, size), np.float32)
    mask[top:top + h, left:left + w] = 1.0
    return mask


def irregular_mask(size: int, rng: np.random.Generator,
                   bucket: Sequence[float] | None = None) -> np.ndarray:
    """Procedural irregular mask with hole ratio in ``bucket`` (None = a random HOLE_BUCKETS entry) -> (size, size)."""
    if bucket is None:
        bucket = HOLE_BUCKETS[int(rng.integers(len(HOLE_BUCKETS)))]
    return random_irregular_mask(size, rng, bucket)


def load_mask(path: str | Path, size: int) -> torch.Tensor:
    """Mask file (white = hole, NVIDIA layout) -> float32 (1, size, size) by ``holes.fit_mask``, as the evaluation reads it.

    Read by ``imageio.mask_plane`` (grey, EXIF, 16-bit, alpha rules), centre-cropped to a square, scaled
    bilinearly, then the one mask rule: at least half intensity is a hole.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file '{path}' does not exist")
    hole = holes.fit_mask(path, size)  # (size, size) bool, ValueError naming the file
    return torch.from_numpy(hole.astype(np.float32))[None]  # (1, size, size)


def find_mask_files(root: str | Path) -> list[Path]:
    """Every MASK_EXTENSIONS file under ``root`` (recursive, case-insensitive), sorted; ValueError if none."""
    return imageio.find_images(root, "mask", hint=": white = hole, e.g. NVIDIA's irregular mask set")


_CHECKED: dict[tuple, list[Path]] = {}  # (folder, size, file stats) -> usable files, so one warning per folder


def usable_mask_files(files: Sequence[Path], size: int, root: str | Path = "the mask folder") -> list[Path]:
    """The `files` that load as masks with both hole and known pixels at `size` px; ONE warning names the rest.

    Unreadable files, all-hole masks (nothing known to inpaint from) and empty masks (no hole) are
    skipped; ValueError if none is left. Checked once per folder, size and file set.
    """
    try:
        stats = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    except OSError:
        stats = None
    key = (str(Path(root).resolve()) if isinstance(root, (str, Path)) else root, size, stats)
    if stats is not None and key in _CHECKED:
        return list(_CHECKED[key])
    usable, skipped = [], []
    for path in files:
        try:
            hole = load_mask(path, size)
        except (ValueError, OSError) as exc:
            skipped.append(f"{path} (unreadable: {str(exc).split(': ', 1)[-1][:80]})")
            continue
        ratio = float(hole.mean())
        if ratio == 1.0:
            skipped.append(f"{path} (all hole at {size} px)")
        elif ratio == 0.0:
            skipped.append(f"{path} (empty: no hole at {size} px)")
        else:
            usable.append(path)
    if not usable:
        raise ValueError(f"mask folder '{root}' has no usable mask among {len(files)} files: "
                         f"{'; '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}. Masks need white = hole "
                         "and some black (known) pixels")
    if skipped:
        shown = "; ".join(skipped[:20]) + (f"; and {len(skipped) - 20} more" if len(skipped) > 20 else "")
        warnings.warn(f"mask folder '{root}': skipping {len(skipped)} of {len(files)} masks: {shown}",
                      RuntimeWarning, stacklevel=3)
    if stats is not None:
        _CHECKED[key] = list(usable)
    return usable


class MaskSource:
    """A different mask per sample, reproducible from (seed, epoch, index): ``sample(i) -> (1, H, W)``.

    ``mask_type='center'`` always gives ``center_mask(image_size)`` (``mask_root`` is ignored, as in the
    original). ``'random'`` picks a file from ``mask_root`` when it is set, else draws a procedural
    irregular mask from a random HOLE_BUCKETS bucket. ``'mixed'`` gives the centre mask for half the
    samples and a ``'random'`` mask for the others (a model that handles both). ``'boxes'`` gives a
    ``random_box_mask`` (a rectangle of random size and position) for half the samples and a ``'random'``
    mask for the others: what the shipped demo model trains on. The folder's masks
    are checked once here (`usable_mask_files`): unreadable, all-hole and empty ones are left out.
    """

    def __init__(self, mask_type: str, image_size: int, mask_root: str | Path | None = None,
                 seed: int = 0) -> None:
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {', '.join(map(repr, MASK_TYPES))}, got {mask_type!r}")
        self.mask_type = mask_type
        self.image_size = image_size
        self.mask_root = mask_root
        self.seed = seed
        self.files: list[Path] = (usable_mask_files(find_mask_files(mask_root), image_size, mask_root)
                                  if mask_type != "center" and mask_root is not None else [])
        self._center = center_mask(image_size) if mask_type in ("center", "mixed") else None

    def sample(self, index_or_rng: int | np.random.Generator, epoch: int = 0) -> torch.Tensor:
        """Mask for sample ``index`` in ``epoch`` (or drawn from a given Generator) -> float32 (1, H, W)."""
        if self.mask_type == "center":
            return self._center.clone()
        if isinstance(index_or_rng, np.random.Generator):
            rng = index_or_rng
        else:
            rng = np.random.default_rng([self.seed, epoch, int(index_or_rng)])
        if self.mask_type == "mixed" and rng.random() < 0.5:
            return self._center.clone()
        if self.mask_type == "boxes" and rng.random() < 0.5:
            return torch.from_numpy(random_box_mask(self.image_size, rng))[None]  # (1, H, W)
        if self.files:
            return load_mask(self.files[int(rng.integers(len(self.files)))], self.image_size)
        return torch.from_numpy(irregular_mask(self.image_size, rng))[None]  # (1, H, W)

    def __repr__(self) -> str:
        source = f"{len(self.files)} files in {str(self.mask_root)!r}" if self.files else "procedural"
        detail = "" if self.mask_type == "center" else f", {source}"
        return f"MaskSource({self.mask_type!r}, {self.image_size} px{detail}, seed={self.seed})"


def apply_mask(image: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Zero the hole: ``image * (1 - mask)``; image (B,3,H,W) or (3,H,W) in [-1, 1], mask (B,1,H,W) or (1,H,W).

    0 in [-1, 1] space is mid-grey, so the hole shows as flat grey. (The networks build their own hole
    fill; this is for display and for the zero-filled half of the refinement input.)
    """
    return image * (1 - mask)


def hole_ratio(mask: torch.Tensor | np.ndarray) -> float:
    """Share of hole pixels (value > 0.5) over every element of a mask of any shape -> float in [0, 1]."""
    if isinstance(mask, torch.Tensor):
        return float((mask > 0.5).float().mean())
    return float(np.mean(np.asarray(mask) > 0.5))
