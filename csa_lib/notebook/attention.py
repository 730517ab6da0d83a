"""Pictures and small explainers for the CSA layer: feature masks, score maps, blend weights, the chain.

Everything here reads a `CSAAttention` record (see `csa_layer.py`) and draws it with matplotlib.
The plotting functions build `matplotlib.figure.Figure` objects directly (no pyplot state), so they
work headless, in tests and in notebooks alike: a notebook shows a figure by ending a cell with it.

Positions are feature cells (row, col) of the CSA feature map (h x w, = H/8 x W/8 of the image);
`cell_box` maps a cell to the image pixels it stands for. The layers CSA is compared with in the
classroom walkthrough (contextual attention, the Shift-Net shift) are in `compared_layers.py`; the
widget that steps through the hole cells is `explorer.py`.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from PIL import Image
from torch import Tensor

from .. import imageio
from ..csa_layer import CSAAttention
from ..synthetic import SyntheticImages
from ..imageio import read_image
from ..utils import from_pil
from .viz import NotebookFigure, hide_ticks, robust_limits, to_chw, to_hwc

__all__ = [
    "best_match", "blend_summary", "cell_box", "demo_image",
    "describe_blend", "hole_index", "hole_positions", "plot_blend_weights", "plot_chain", "plot_curves",
    "plot_feature_mask", "plot_feature_panels", "plot_maps", "plot_score_map", "run_with_csa_input",
]

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "data" / "samples" / "images"
_QUERY_COLOUR, _MATCH_COLOUR = "tab:red", "white"
_HOLE_GREY = (0.83, 0.83, 0.83)  # matplotlib's "lightgrey", opaque over the hole


# --------------------------------------------------------------------------------------------
# Positions
# --------------------------------------------------------------------------------------------
def _check_sample(attention: CSAAttention, sample: int) -> None:
    batch = attention.hole.shape[0]
    if not 0 <= sample < batch:
        raise ValueError(f"sample must be in 0..{batch - 1}, got {sample}")


def hole_index(attention: CSAAttention, sample: int, row: int, col: int) -> int:
    """Step t of hole cell (row, col) in the raster-order chain of `sample`; ValueError if not a hole cell."""
    _check_sample(attention, sample)
    h, w = attention.size
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"cell ({row}, {col}) is outside the {h}x{w} feature map")
    found = (attention.order[sample] == row * w + col).nonzero()
    if len(found) == 0:
        raise ValueError(f"cell ({row}, {col}) of sample {sample} is a known cell, not a hole cell")
    return int(found[0, 0])


def hole_positions(attention: CSAAttention, sample: int = 0) -> list[tuple[int, int]]:
    """The hole cells (row, col) of `sample` in generation (raster) order."""
    _check_sample(attention, sample)
    w = attention.size[1]
    return [(p // w, p % w) for p in attention.order[sample].tolist() if p >= 0]


def best_match(attention: CSAAttention, sample: int, row: int, col: int) -> tuple[int, int]:
    """(row, col) of the known cell that hole cell (row, col) copies from (its argmax score)."""
    hole_index(attention, sample, row, col)  # validates the position
    w = attention.size[1]
    k = int(attention.match[sample, row, col])
    return k // w, k % w


def cell_box(row: int, col: int, feature_size: tuple[int, int], image_size: tuple[int, int]
             ) -> tuple[float, float, float, float]:
    """Pixel box (x0, y0, width, height) of feature cell (row, col) in an image of `image_size` (H, W)."""
    (h, w), (H, W) = feature_size, image_size
    sy, sx = H / h, W / w
    return col * sx, row * sy, sx, sy


# --------------------------------------------------------------------------------------------
# Helpers for images
# --------------------------------------------------------------------------------------------
def _to_2d(array: Tensor | np.ndarray) -> np.ndarray:
    """Any (…,H,W) tensor/array with singleton leading dims -> (H,W) float array."""
    a = array.detach().float().cpu().numpy() if isinstance(array, Tensor) else np.asarray(array, dtype=float)
    a = np.squeeze(a)
    if a.ndim != 2:
        raise ValueError(f"expected a single 2-D map, got shape {np.shape(array)}")
    return a


def demo_image(size: int, name: str | None = None, seed: int = 0) -> tuple[Tensor, str]:
    """(1,3,size,size) image in [-1,1] and its name: a sample photo from data/samples/images, else a synthetic scene."""
    files = imageio.list_images(SAMPLES_DIR, recursive=False)  # [] without the folder
    if name is not None:
        files = [f for f in files if f.stem == name]
    if files:
        pil = imageio.fit(Image.fromarray(read_image(files[0])), size, Image.Resampling.BICUBIC)
        return from_pil(pil)[None], files[0].name  # (1,3,size,size)
    return SyntheticImages(1, size, seed=seed)[0][None], f"synthetic scene (seed {seed})"


def run_with_csa_input(model: torch.nn.Module, image: Tensor, mask: Tensor) -> tuple[Any, Tensor]:
    """Run a CSAGenerator with `return_attention=True` and also catch the CSA layer's input x (B,C,h,w)."""
    captured: dict[str, Tensor] = {}
    hook = model.refine_net.csa.register_forward_hook(lambda _m, inputs, _o: captured.update(x=inputs[0].detach()))
    try:
        out = model(image, mask, return_attention=True)
    finally:
        hook.remove()
    return out, captured["x"]


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------
def plot_feature_mask(mask: Tensor | np.ndarray, feature_hole: Tensor | np.ndarray,
                      coverage: Tensor | np.ndarray | None = None, threshold: float = 5 / 16) -> Figure:
    """Image mask (H,W) with the feature grid, the feature hole cells (h,w), and optionally the filtered coverage."""
    m, fh = _to_2d(mask), _to_2d(feature_hole) > 0.5  # (H,W), (h,w)
    (H, W), (h, w) = m.shape, fh.shape
    n_panels = 3 if coverage is not None else 2
    fig = NotebookFigure(figsize=(3.6 * n_panels, 3.6), layout="constrained")
    axes = fig.subplots(1, n_panels)
    ax = axes[0]
    ax.imshow(m, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for r, c in zip(*np.nonzero(fh)):  # outline every feature hole cell on the image
        x0, y0, bw, bh = cell_box(int(r), int(c), (h, w), (H, W))
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), bw, bh, fill=False, edgecolor="tab:orange", linewidth=0.8))
    ax.set_title(f"image mask {H}x{W} ({int(m.sum())} px)\norange: hole cells at {h}x{w}")
    hide_ticks(ax)
    ax = axes[1]
    ax.imshow(fh, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(f"feature hole mask {h}x{w}\n{int(fh.sum())} hole cells")
    if coverage is not None:
        cov = _to_2d(coverage)
        ax = axes[2]
        shown = ax.imshow(cov, cmap="viridis", interpolation="nearest")
        ax.contour(cov, levels=[threshold], colors="red", linewidths=1.0)
        fig.colorbar(shown, ax=ax, shrink=0.8)
        ax.set_title(f"box-filtered mask\nred: threshold {threshold:.4g}")
    return fig


def plot_score_map(attention: CSAAttention, sample: int, row: int, col: int,
                   image: Tensor | None = None) -> Figure:
    """Search scores of hole cell (row, col) over the known cells, its best match starred; optionally on the image."""
    t = hole_index(attention, sample, row, col)  # ValueError on a bad position
    h, w = attention.size
    scores = attention.scores[sample, t].reshape(h, w).float().cpu().numpy()  # (h,w), -inf at holes
    shown = np.ma.masked_invalid(np.where(np.isfinite(scores), scores, np.nan))
    k = int(np.nanargmax(np.where(np.isfinite(scores), scores, np.nan)))  # argmax over known cells
    mr, mc = k // w, k % w
    fig = NotebookFigure(figsize=(9.0 if image is not None else 4.8, 4.0), layout="constrained")
    axes = fig.subplots(1, 2 if image is not None else 1, squeeze=False)[0]
    ax = axes[0]
    cmap = _cmap("viridis", bad="lightgrey")
    im = ax.imshow(shown, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="score D(p, k)")
    ax.plot([col], [row], marker="s", markersize=8, markerfacecolor="none", markeredgecolor=_QUERY_COLOUR,
            markeredgewidth=2, linestyle="none", label="query")
    ax.plot([mc], [mr], marker="*", markersize=14, color=_MATCH_COLOUR, markeredgecolor="black",
            linestyle="none", label="best match")
    ax.set_title(f"scores of hole cell ({row}, {col}), step {t}\n"
                 f"best ({mr}, {mc}), D_max = {scores[mr, mc]:.3g}", fontsize=10)
    ax.legend(loc="lower right", fontsize=7, framealpha=0.7)
    hide_ticks(ax)
    if image is not None:
        img = to_hwc(image)  # (H,W,3)
        H, W = img.shape[:2]
        ax = axes[1]
        ax.imshow(img, interpolation="nearest")
        # scores over the known cells, see-through; the hole cells opaque grey: what the model cannot see
        overlay = cmap(Normalize(float(shown.min()), float(shown.max()))(shown))  # (h,w,4)
        overlay[..., 3] = np.where(np.ma.getmaskarray(shown), 1.0, 0.45)
        overlay[np.ma.getmaskarray(shown), :3] = _HOLE_GREY
        ax.imshow(overlay, extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest")
        q_box, m_box = cell_box(row, col, (h, w), (H, W)), cell_box(mr, mc, (h, w), (H, W))
        for (x0, y0, bw, bh), colour, label in ((q_box, _QUERY_COLOUR, "query cell"), (m_box, "yellow", "match cell")):
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), bw, bh, fill=False, edgecolor=colour, linewidth=2,
                                   label=label))
        centre = lambda b: (b[0] - 0.5 + b[2] / 2, b[1] - 0.5 + b[3] / 2)  # noqa: E731
        ax.add_patch(FancyArrowPatch(centre(m_box), centre(q_box), arrowstyle="->", mutation_scale=12,
                                     color="yellow", linewidth=1.5))
        ax.set_title(f"on the image ({H}x{W}), cell = {H // h}x{W // w} px\nmatch (yellow) -> query (red)",
                     fontsize=10)
        hide_ticks(ax)
    return fig


def plot_blend_weights(attention: CSAAttention, sample: int = 0, percentile: float = 98.0) -> Figure:
    """Maps of weight_prev (share from the previous hole cell, centred on 0) and weight_match (from the best
    match, centred on 1), on a robust scale (`viz.robust_limits`): outliers are clipped, not allowed to flatten it."""
    _check_sample(attention, sample)
    hole = attention.hole[sample].cpu().numpy()  # (h,w)
    fig = NotebookFigure(figsize=(8.4, 3.9), layout="constrained")
    axes = fig.subplots(1, 2)
    cmap = _cmap("coolwarm", bad="lightgrey")
    for ax, name, label, centre in ((axes[0], "weight_prev", "from previous hole cell", 0.0),
                                    (axes[1], "weight_match", "from best match", 1.0)):
        values = getattr(attention, name)[sample].float().cpu().numpy()  # (h,w)
        masked = np.ma.masked_where(~hole, values)
        lo, hi = robust_limits(masked.compressed(), centre, percentile)
        clipped = int((np.abs(masked.compressed() - centre) > (hi - centre) * (1 + 1e-6)).sum())
        im = ax.imshow(masked, cmap=cmap, norm=Normalize(lo, hi), interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.8, extend="both")
        ax.set_title(f"{name}: {label}\nhole mean {float(masked.mean()):.3f}, grey = known, clipped: {clipped}",
                     fontsize=9)
        hide_ticks(ax)
    return fig


def blend_summary(attention: CSAAttention, sample: int = 0) -> dict[str, float]:
    """Over one sample's hole cells: mean, min and max of weight_match and weight_prev, and the share outside [0, 1]."""
    _check_sample(attention, sample)
    hole = attention.hole[sample].bool()  # (h,w)
    match = attention.weight_match[sample][hole].double()  # (T,)
    prev = attention.weight_prev[sample][hole].double()  # (T,)
    if match.numel() == 0:
        raise ValueError(f"sample {sample} has no hole cell")
    outside = ((match < 0) | (match > 1) | (prev < 0) | (prev > 1)).double().mean()
    return {"cells": match.numel(), "match_mean": float(match.mean()), "prev_mean": float(prev.mean()),
            "match_min": float(match.min()), "match_max": float(match.max()),
            "prev_min": float(prev.min()), "prev_max": float(prev.max()), "outside": float(outside)}


def describe_blend(attention: CSAAttention, sample: int = 0, barely: float = 0.25) -> str:
    """A plain sentence on what the blend weights show: does the layer copy its matches or carry the previous cell?"""
    s = blend_summary(attention, sample)
    head = (f"On average a hole cell takes {s['match_mean']:.2f} of its best match (weight_match) and "
            f"{s['prev_mean']:.2f} of the previous hole cell (weight_prev), over {s['cells']} hole cells.")
    if s["match_mean"] < barely:
        verdict = ("This model barely uses its matches: the CSA layer mostly carries the previous hole cell "
                   "along the raster chain, so the best matches in the score maps hardly reach its output.")
    elif s["match_mean"] > 1 - barely:
        verdict = ("This model mostly copies its best matches: the previous hole cell adds little, so the fill "
                   "follows the score maps closely.")
    else:
        verdict = "This model mixes both: each hole cell blends its best match with the cell generated before it."
    rest = ""
    if s["outside"] > 0:
        rest = (f" {s['outside']:.0%} of the hole cells have weights outside [0, 1] (weight_match from "
                f"{s['match_min']:.2f} to {s['match_max']:.2f}): an extrapolation there, not a blend.")
    return f"{head} {verdict}{rest}"


def plot_chain(attention: CSAAttention, sample: int = 0, background: Tensor | None = None) -> Figure:
    """The raster-order chain over the hole cells as arrows from each hole cell to the next one generated."""
    cells = hole_positions(attention, sample)
    h, w = attention.size
    fig = NotebookFigure(figsize=(4.8, 4.4), layout="constrained")
    ax = fig.subplots()
    bg = _to_2d(background) if background is not None else attention.hole[sample].float().cpu().numpy()
    ax.imshow(bg, cmap="Greys" if background is None else "viridis", vmin=None if background is not None else -0.2,
              vmax=None if background is not None else 2.0, interpolation="nearest")
    if len(cells) >= 2:
        rows, cols = np.array(cells, dtype=float).T  # (T,), (T,)
        u, v = np.diff(cols), np.diff(rows)  # (T-1,) steps in x (col) and y (row)
        ax.quiver(cols[:-1], rows[:-1], u, v, np.arange(len(u)), cmap="plasma", angles="xy", scale_units="xy",
                  scale=1, width=0.006, headwidth=4, headlength=5)
    if cells:
        ax.plot([cells[0][1]], [cells[0][0]], "o", color="tab:green", markersize=9, label="first (copy)")
        ax.plot([cells[-1][1]], [cells[-1][0]], "X", color="tab:red", markersize=9, label="last")
        ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_title(f"generation order: {len(cells)} hole cells\nrow by row, left to right (colour = step)")
    hide_ticks(ax)
    return fig


def plot_feature_panels(panels: Mapping[str, Tensor], hole: Tensor | None = None) -> Figure:
    """3-channel feature maps (3,h,w) or (1,3,h,w) side by side as RGB (one shared scale); hole cells outlined."""
    arrays = {name: to_chw(t) for name, t in panels.items()}  # name -> (3,h,w)
    if not arrays:
        raise ValueError("plot_feature_panels needs at least one panel")
    lo = min(a.min() for a in arrays.values())
    hi = max(a.max() for a in arrays.values())
    fig = NotebookFigure(figsize=(2.6 * len(arrays), 2.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(arrays)))
    hole_cells = np.argwhere(_to_2d(hole) > 0.5) if hole is not None else np.empty((0, 2), dtype=int)
    for ax, (name, a) in zip(axes, arrays.items()):
        ax.imshow(((a - lo) / max(hi - lo, 1e-12)).transpose(1, 2, 0), interpolation="nearest")
        for r, c in hole_cells:
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2,
                                   linestyle="--"))
        ax.set_title(name, fontsize=10)
        hide_ticks(ax)
    return fig


def plot_maps(maps: Mapping[str, Tensor | np.ndarray], cmap: str = "viridis") -> Figure:
    """Panels side by side: (3,H,W)/(1,3,H,W) tensors in [-1,1] as RGB images, 2-D maps with a colour bar."""
    if not maps:
        raise ValueError("plot_maps needs at least one map")
    fig = NotebookFigure(figsize=(2.6 * len(maps), 2.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(maps)))
    for ax, (name, value) in zip(axes, maps.items()):
        shape = tuple(value.shape)
        if len(shape) >= 3 and shape[-3] == 3 and isinstance(value, Tensor):
            ax.imshow(to_hwc(value), interpolation="nearest")
        else:
            im = ax.imshow(np.ma.masked_invalid(_to_2d(value)), cmap=_cmap(cmap, bad="lightgrey"),
                           interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(name, fontsize=10)
        hide_ticks(ax)
    return fig


def plot_curves(x: Tensor | np.ndarray, curves: Mapping[str, Tensor | np.ndarray], xlabel: str = "",
                title: str = "") -> Figure:
    """Line plot of several curves y(x) sharing one x axis, with a legend."""
    fig = NotebookFigure(figsize=(4.8, 3.2), layout="constrained")
    ax = fig.subplots()
    xs = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=float)
    for name, y in curves.items():
        ax.plot(xs, np.asarray(y.detach().cpu() if isinstance(y, Tensor) else y, dtype=float), label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _cmap(name: str, bad: str):
    return colormaps[name].with_extremes(bad=bad)
