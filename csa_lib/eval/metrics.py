"""Image-quality metrics for inpainting, over the whole image or the hole only, grouped by hole-area bucket.

Canonical form: every image is converted to a float64 ``(H, W, 3)`` array of values in
[0, 255]. Inputs may be uint8 or float arrays (or PIL images) already in [0, 255]; float
images in [0, 1] must be scaled by the caller. Masks are ``(H, W)`` (``(1, H, W)`` and
``(H, W, 1)`` are squeezed), bool or float, with hole = ``mask > 0.5`` (so 1/True/255 = hole).

Metric definitions (``result`` = inpainted image, ``truth`` = ground truth):

- ``psnr``: ``10 log10(255^2 / MSE)`` with MSE on the [0, 255] scale; ``inf`` when equal.
- ``ssim``: ``skimage.metrics.structural_similarity(channel_axis=-1, data_range=255)``.
  Over the hole it is the mean of the SSIM map (``full=True``) over hole pixels and channels
  (the whole-image value instead crops a 3-pixel border, as skimage does).
- ``l1`` / ``l2``: mean absolute / mean squared error on the [0, 1] scale.
- ``tv``: total variation of ``result`` on the [0, 1] scale,
  ``mean|I[y, x+1] - I[y, x]| + mean|I[y+1, x] - I[y, x]|`` (over pixels and channels).
  Over the hole, each mean runs over the differences with at least one pixel in the hole,
  so the seam at the hole border counts.
- ``colour_cast``: the tint of the fill, in 8-bit levels (0-255): per channel, the mean over hole
  pixels of the signed difference ``result - truth``; the largest absolute one of the three.
  A uniform shift of +5 in red reads 5; noise that averages out reads about 0.

Perceptual distance (shift-tolerant LPIPS) is in ``csa_lib.eval.perceptual``.

Hole-only metrics over an empty hole are ``nan``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csa_lib import holes
from csa_lib.masks import HOLE_BUCKETS  # the masks are drawn per bucket; results are grouped by them

OVERFLOW_BUCKET: tuple[float, float] = (0.6, 1.0)
METRIC_KEYS: tuple[str, ...] = (
    "psnr", "ssim", "l1", "l2", "tv",
    "psnr_hole", "ssim_hole", "l1_hole", "l2_hole", "tv_hole", "colour_cast",
)
_EDGE_EPS = 1e-9  # ratios this close below an edge count as the upper bucket (float round-off)


def bucket_label(bucket: tuple[float, float]) -> str:
    """Label of a hole-area bucket: ``(0.1, 0.2) -> "10-20%"``."""
    lo, hi = bucket
    return f"{round(lo * 100)}-{round(hi * 100)}%"


BUCKET_LABELS: tuple[str, ...] = tuple(bucket_label(b) for b in (*HOLE_BUCKETS, OVERFLOW_BUCKET))


def bucket_of(ratio: float) -> str:
    """Bucket label of a hole ratio in [0, 1]: [lo, hi) buckets of 10 %, and "60-100%" above 60 %."""
    if not 0.0 <= ratio <= 1.0 or math.isnan(ratio):
        raise ValueError(f"hole ratio must be in [0, 1], got {ratio}")
    for bucket in HOLE_BUCKETS:
        if ratio + _EDGE_EPS < bucket[1]:
            return bucket_label(bucket)
    return bucket_label(OVERFLOW_BUCKET)


def as_image(image: Any) -> np.ndarray:
    """Any (H, W, 3) uint8/float image in [0, 255] (array or PIL) -> float64 (H, W, 3) in [0, 255]."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {array.shape}")
    return array


def as_hole(mask: Any) -> np.ndarray:
    """Any (H, W), (1, H, W) or (H, W, 1) mask -> bool (H, W), by `holes.read_mask`'s one mask rule.

    True, 1 (a 0/1 mask), floats > 0.5 and 8-bit values >= 128 are hole.
    """
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    elif array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {array.shape}")
    return holes.read_mask(array)  # (H, W) bool


def _pair(result: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two images -> float64 (H, W, 3) pair of equal shape."""
    result, truth = as_image(result), as_image(truth)
    if result.shape != truth.shape:
        raise ValueError(f"shape mismatch: result {result.shape} vs truth {truth.shape}")
    return result, truth


def _region(mask: Any, shape: tuple[int, ...], region: str) -> np.ndarray | None:
    """Hole (H, W) bool for region="hole", None for region="all"; checks the shape."""
    if region == "all":
        return None
    if region != "hole":
        raise ValueError(f"region must be 'all' or 'hole', got {region!r}")
    if mask is None:
        raise ValueError("region='hole' needs a mask")
    hole = as_hole(mask)
    if hole.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {hole.shape} does not match image shape {shape[:2]}")
    return hole


def _errors(result: Any, truth: Any, mask: Any, region: str) -> np.ndarray:
    """Per-value differences ``result - truth`` on the [0, 255] scale, (N,) over the chosen region."""
    result, truth = _pair(result, truth)
    hole = _region(mask, result.shape, region)
    diff = result - truth  # (H, W, 3)
    return diff.ravel() if hole is None else diff[hole].ravel()  # (H*W*3,) or (n_hole*3,)


def psnr(result: Any, truth: Any, mask: Any = None, region: str = "all") -> float:
    """PSNR in dB of (H, W, 3) images in [0, 255]; region="hole" uses hole pixels only."""
    err = _errors(result, truth, mask, region)
    if err.size == 0:
        return float("nan")
    mse = float(np.mean(err**2))
    return float("inf") if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def l1(result: Any, truth: Any, mask: Any = None, region: str = "all") -> float:
    """Mean absolute error on the [0, 1] scale of (H, W, 3) images in [0, 255]."""
    err = _errors(result, truth, mask, region)
    return float(np.mean(np.abs(err)) / 255.0) if err.size else float("nan")


def l2(result: Any, truth: Any, mask: Any = None, region: str = "all") -> float:
    """Mean squared error on the [0, 1] scale of (H, W, 3) images in [0, 255]."""
    err = _errors(result, truth, mask, region)
    return float(np.mean((err / 255.0) ** 2)) if err.size else float("nan")


def ssim(result: Any, truth: Any, mask: Any = None, region: str = "all") -> float:
    """SSIM of (H, W, 3) images in [0, 255] (skimage, 7x7 window); region="hole" averages the map in the hole."""
    try:
        from skimage.metrics import structural_similarity  # here: scikit-image is in the optional eval extra
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("ssim needs scikit-image: pip install 'csa-inpainting[eval]'") from exc
    result, truth = _pair(result, truth)
    hole = _region(mask, result.shape, region)
    if hole is None:
        return float(structural_similarity(truth, result, channel_axis=-1, data_range=255))
    if not hole.any():
        return float("nan")
    _, ssim_map = structural_similarity(truth, result, channel_axis=-1, data_range=255, full=True)  # (H, W, 3)
    return float(np.mean(ssim_map[hole]))


def tv(result: Any, mask: Any = None, region: str = "all") -> float:
    """Total variation of an (H, W, 3) image in [0, 255], on the [0, 1] scale: mean|dx| + mean|dy|."""
    image = as_image(result) / 255.0  # (H, W, 3)
    hole = _region(mask, image.shape, region)
    dx = np.abs(image[:, 1:] - image[:, :-1])  # (H, W-1, 3)
    dy = np.abs(image[1:] - image[:-1])  # (H-1, W, 3)
    if hole is not None:
        if not hole.any():
            return float("nan")
        dx = dx[hole[:, 1:] | hole[:, :-1]]  # (n_x, 3) differences touching the hole
        dy = dy[hole[1:] | hole[:-1]]  # (n_y, 3)
    return float((dx.mean() if dx.size else 0.0) + (dy.mean() if dy.size else 0.0))


def colour_cast(result: Any, truth: Any, mask: Any) -> float:
    """Largest |per-channel mean of (result - truth)| over the hole of (H, W, 3) images, in levels (0-255)."""
    result, truth = _pair(result, truth)
    hole = _region(mask, result.shape, "hole")
    if not hole.any():
        return float("nan")
    mean_shift = (result[hole] - truth[hole]).mean(axis=0)  # (3,) signed, per channel
    return float(np.abs(mean_shift).max())


def compute_all(result: Any, truth: Any, mask: Any) -> dict[str, float]:
    """Every metric of METRIC_KEYS plus ``hole_ratio`` for one (H, W, 3) result, truth and (H, W) mask."""
    result, truth = _pair(result, truth)
    hole = as_hole(mask)
    row = {"hole_ratio": float(hole.mean())}
    for region, suffix in (("all", ""), ("hole", "_hole")):
        row["psnr" + suffix] = psnr(result, truth, hole, region)
        row["ssim" + suffix] = ssim(result, truth, hole, region)
        row["l1" + suffix] = l1(result, truth, hole, region)
        row["l2" + suffix] = l2(result, truth, hole, region)
        row["tv" + suffix] = tv(result, hole, region)
    row["colour_cast"] = colour_cast(result, truth, hole)
    return row


def _is_number(value: Any) -> bool:
    """True for int/float (and numpy scalars), False for bools and strings."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _mean(values: Sequence[float]) -> float:
    """Mean ignoring nan; nan when nothing is left; inf propagates."""
    kept = [float(v) for v in values if not math.isnan(float(v))]
    return sum(kept) / len(kept) if kept else float("nan")


def summarise(
    rows: Sequence[Mapping[str, Any]],
    by: Sequence[str] = ("method", "bucket"),
    metrics: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Group rows by the ``by`` keys and average the metrics (nan ignored); adds ``n`` (rows per group).

    Groups are ordered by first appearance of each key's values, buckets by area.
    ``metrics=None`` averages every numeric field that is not a ``by`` key.
    """
    if metrics is None:
        metrics = []
        for row in rows:
            for key, value in row.items():
                if key not in by and key not in metrics and _is_number(value):
                    metrics.append(key)
    order: dict[str, dict[Any, int]] = {key: {} for key in by}
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        group = tuple(row[key] for key in by)
        for key, value in zip(by, group):
            order[key].setdefault(value, len(order[key]))
        groups.setdefault(group, []).append(row)

    def sort_key(group: tuple) -> tuple:
        """Position of each key's value: bucket labels by area, others by first appearance."""
        return tuple(
            BUCKET_LABELS.index(value) if key == "bucket" and value in BUCKET_LABELS
            else len(BUCKET_LABELS) + order[key][value]
            for key, value in zip(by, group)
        )

    summary = []
    for group in sorted(groups, key=sort_key):
        members = groups[group]
        out: dict[str, Any] = dict(zip(by, group))
        out["n"] = len(members)
        for key in metrics:
            values = [m[key] for m in members if key in m and _is_number(m[key])]
            out[key] = _mean(values)
        summary.append(out)
    return summary


def _columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Union of the rows' keys, in first-appearance order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    return columns


def _format(value: Any, floatfmt: str) -> str:
    """One Markdown cell: floats with ``floatfmt``, everything else with str()."""
    if isinstance(value, (float, np.floating)):
        return format(float(value), floatfmt)
    return "" if value is None else str(value)


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".4g") -> str:
    """Rows (list of dicts) -> a GitHub Markdown table; floats formatted with ``floatfmt``."""
    columns = list(columns) if columns is not None else _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(key), floatfmt) for key in columns) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Mapping[str, Any]], path: str | Path, columns: Sequence[str] | None = None) -> Path:
    """Write rows (list of dicts) to a CSV file with a header row; creates parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns) if columns is not None else _columns(rows)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in columns})
    return path
