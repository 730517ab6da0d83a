"""Pictures of training and testing: sample strips, loss curves, training-sample grids, inpainting strips.

Every figure is a `matplotlib.figure.Figure` built directly (no pyplot state), so it works headless
and displays inline in notebooks.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn
from torchvision.utils import make_grid

from .. import holes
from ..imageio import read_image
from ..masks import hole_ratio
from ..utils import to_pil

STRIP_COLUMNS = ("input", "coarse", "refined", "composite", "truth")
DISPLAY_DPI = 80  # notebook pictures: sharp enough, small enough to keep in a notebook
MIN_DISPLAY_WIDTH = 1000  # pixels: a narrow figure is drawn at a higher dpi, so it reads on a projector


class NotebookFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG, at least MIN_DISPLAY_WIDTH px wide (no pyplot needed)."""

    def display_dpi(self) -> float:
        """DISPLAY_DPI, or more for a figure narrower than MIN_DISPLAY_WIDTH pixels at that dpi."""
        return max(DISPLAY_DPI, MIN_DISPLAY_WIDTH / self.get_figwidth())

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=self.display_dpi())
        return buffer.getvalue()


LOSS_GROUPS: dict[str, tuple[str, ...]] = {
    "reconstruction (L1)": ("l1_coarse", "l1_refined"),
    "adversarial": ("adv_image", "adv_feature", "d_image", "d_feature"),
    "consistency": ("consistency_csa", "consistency_decoder"),
    "total": ("g_total", "d_total"),
}


def masked_input(image: Tensor | np.ndarray, mask: Tensor | np.ndarray, fill: float = 1.0) -> Tensor | np.ndarray:
    """The input as shown: its hole painted `fill` (a share of full scale; white by default); the library's one.

    Tensors: (B,3,H,W) or (3,H,W) in [-1,1] with a (B,1,H,W) / (1,H,W) mask, 1 = hole -> a tensor of the
    image's shape. Arrays: uint8 (H,W,3) with a bool (H,W) hole -> uint8 (H,W,3), the hole round(255 * fill).
    """
    if isinstance(image, Tensor):
        return holes.composite(torch.full_like(image, fill), image, mask > 0.5)  # (B,3,H,W)
    image = np.asarray(image, dtype=np.uint8)
    return holes.composite(np.full_like(image, round(255 * fill)), image, np.asarray(mask, dtype=bool))  # (H,W,3)


def sample_strip(image: Tensor, mask: Tensor, out: Any, max_rows: int = 4) -> Tensor:
    """Grid (3, rows*H', 5*W') in [-1,1]: one row per sample: input with hole, coarse, refined, composite, truth."""
    n = min(max_rows, image.shape[0])
    columns = [masked_input(image[:n], mask[:n]), out.coarse[:n], out.refined[:n], out.composite[:n], image[:n]]
    tiles = torch.stack([c.detach().float().cpu().clamp(-1, 1) for c in columns], dim=1)  # (n,5,3,H,W)
    return make_grid(tiles.flatten(0, 1), nrow=len(columns), padding=2, pad_value=-1.0)  # (3, H', W')


def label_columns(strip: Image.Image, labels: Sequence[str], band: int = 18) -> Image.Image:
    """`strip` with a white band on top naming its equal-width columns (a make_grid with 2-px padding)."""

    width, height = strip.size
    labelled = Image.new("RGB", (width, height + band), "white")
    labelled.paste(strip.convert("RGB"), (0, band))
    draw = ImageDraw.Draw(labelled)
    font = ImageFont.load_default(size=max(8, band - 6))
    step = (width - 2) / len(labels)  # tile + 2 px padding
    for k, label in enumerate(labels):
        centre = 2 + step * k + (step - 2) / 2
        draw.text((centre, band / 2), label, fill="black", font=font, anchor="mm")
    return labelled


def save_sample_strip(path: str | os.PathLike, image: Tensor, mask: Tensor, out: Any, max_rows: int = 4) -> Path:
    """Write `sample_strip(...)` as a PNG with its columns named on top (STRIP_COLUMNS); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    label_columns(to_pil(sample_strip(image, mask, out, max_rows)), STRIP_COLUMNS).save(path)
    return path


@torch.no_grad()
def save_generator_samples(path: str | os.PathLike, generator: nn.Module, batch: dict[str, Tensor],
                           device: torch.device, autocast: Callable[[], Any] = contextlib.nullcontext) -> Path:
    """`save_sample_strip` of `generator`'s output in eval mode on batch {"image": (B,3,H,W), "mask": (B,1,H,W)}.

    The batch is moved to `device`, the forward pass runs inside `autocast()`; the generator's
    train / eval mode is put back afterwards.
    """
    image, mask = batch["image"].to(device), batch["mask"].to(device)
    was_training = generator.training
    generator.eval()
    with autocast():
        out = generator(image, mask)
    generator.train(was_training)
    return save_sample_strip(path, image, mask, out)


def loss_plot(history: Sequence[dict[str, float]], keys: Sequence[str] | None = None,
              figsize: tuple[float, float] | None = None) -> Figure:
    """Loss curves against step from history rows ({"step": ..., loss: ...}); one panel per loss group.

    Without `keys`, the LOSS_GROUPS terms that are logged and not always zero are drawn.
    """
    if keys is not None:
        groups = {"losses": tuple(keys)}
    else:
        live = {k for row in history for k, v in row.items() if v}  # terms switched off log only zeros
        groups = {name: tuple(k for k in ks if k in live) for name, ks in LOSS_GROUPS.items()}
        groups = {name: ks for name, ks in groups.items() if ks}
        groups = groups or {"losses": tuple(k for k in (history[0] if history else {}) if k not in ("step", "epoch"))}
    fig = NotebookFigure(figsize=figsize or (4.0 * len(groups), 3.0), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (title, ks) in zip(axes, groups.items()):
        for k in ks:
            points = [(row["step"], row[k]) for row in history if k in row]
            if points:
                ax.plot(*zip(*points), label=k)
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return fig


class LivePlot:
    """Notebook callback: redraws `loss_plot(trainer.history)` every `every` steps (`Trainer(cfg, [LivePlot()])`)."""

    def __init__(self, every: int = 50, keys: Sequence[str] | None = None):
        self.every, self.keys = every, keys
        self._handle = None

    def on_step_end(self, trainer: Any, logs: dict[str, float]) -> None:
        """Redraw when `trainer.step` is a multiple of `every` (rank 0 only)."""
        if trainer.step % self.every or not trainer.history or not getattr(trainer, "is_main", True):
            return
        fig = loss_plot(trainer.history, self.keys)
        try:
            from IPython.display import display  # here: IPython exists only in notebooks (the notebooks extra)
        except ImportError:
            return
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)

    def on_fit_end(self, trainer: Any) -> None:
        """Final redraw."""
        if trainer.history and self._handle is not None:
            self._handle.update(loss_plot(trainer.history, self.keys))


def to_chw(image: Tensor) -> np.ndarray:
    """(3,H,W) or (1,3,H,W) tensor -> (3,H,W) float32 array, values unchanged."""
    img = image.detach().float().cpu()
    if img.dim() == 4:
        img = img[0]
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"image must be (3,H,W) or (1,3,H,W), got {tuple(image.shape)}")
    return img.numpy()


def to_hwc(image: Tensor) -> np.ndarray:
    """(3,H,W) or (1,3,H,W) in [-1,1] -> (H,W,3) float array in [0,1]."""
    return ((np.clip(to_chw(image), -1, 1) + 1) / 2).transpose(1, 2, 0)  # (H,W,3)


def robust_limits(values: Any, centre: float = 0.0, percentile: float = 98.0) -> tuple[float, float]:
    """(vmin, vmax) symmetric around `centre`: the `percentile`-th percentile of |values - centre|.

    A colour scale that a few outliers cannot flatten: with the default the 2 % of values farthest from
    the centre (at least the farthest one when there are fewer than 50) are clipped to the ends of the scale (draw the colour bar with ``extend="both"``).
    NaNs are ignored; ValueError when nothing finite is left.
    """
    a = np.asarray(values, dtype=float).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        raise ValueError("robust_limits needs at least one finite value")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    half = float(np.percentile(np.abs(a - centre), percentile, method="lower"))  # never interpolates an outlier in
    half = half if half > 0 else 1e-6  # all values at the centre: a tiny scale, not a singular one
    return centre - half, centre + half


def hide_ticks(ax: Any) -> None:
    """Remove both axes' ticks (image panels)."""
    ax.set_xticks([])
    ax.set_yticks([])


def dataset_grid(dataset: Any, n: int = 8, start: int = 0) -> Figure:
    """Samples `start .. start+n-1` of a dataset of {"image": (3,H,W), "mask": (1,H,W)}: rows truth, mask, input."""
    n = min(n, len(dataset) - start)
    if n < 1:
        raise ValueError(f"no samples to show: dataset has {len(dataset)}, start={start}")
    items = [dataset[start + i] for i in range(n)]
    fig = NotebookFigure(figsize=(1.4 * n, 1.4 * 3 + 0.3), layout="constrained")
    axes = fig.subplots(3, n, squeeze=False)
    for col, item in enumerate(items):
        image, mask = item["image"], item["mask"]  # (3,H,W), (1,H,W)
        panels = [to_hwc(image), mask[0].float().cpu().numpy(), to_hwc(masked_input(image, mask))]
        for row, panel in enumerate(panels):
            ax = axes[row][col]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            hide_ticks(ax)
        axes[0][col].set_title(f"hole {hole_ratio(mask):.0%}", fontsize=8)
    for row, label in enumerate(("truth", "mask (white = hole)", "input")):
        axes[row][0].set_ylabel(label, fontsize=8)
    return fig


def sample_strip_files(checkpoints_dir: str | os.PathLike) -> list[Path]:
    """The sample strips a Trainer wrote, `<checkpoints_dir>/samples/step_<step>.png`, sorted by step."""
    folder = Path(checkpoints_dir) / "samples"
    files = [p for p in folder.glob("step_*.png") if re.fullmatch(r"step_\d+\.png", p.name)]
    return sorted(files, key=lambda p: int(p.stem.split("_")[1]))


def show_sample_strips(checkpoints_dir: str | os.PathLike, last: int = 2) -> Figure:
    """The newest `last` sample strips of a run, one panel each, titled by step, columns labelled (STRIP_COLUMNS)."""
    files = sample_strip_files(checkpoints_dir)[-last:]
    if not files:
        raise FileNotFoundError(f"no sample strips in {Path(checkpoints_dir) / 'samples'} "
                                "(the Trainer writes one every cfg.sample_every steps)")
    strips = []
    for path in files:
        strips.append(read_image(path))  # (H',W',3) uint8
    height, width = strips[-1].shape[:2]
    fig = NotebookFigure(figsize=(8.0, 8.0 * height / width * len(strips) + 0.4 * len(strips)), layout="constrained")
    axes = fig.subplots(len(strips), 1, squeeze=False)[:, 0]
    for ax, path, strip in zip(axes, files, strips):
        step = (strip.shape[1] - 2) / len(STRIP_COLUMNS)  # make_grid: tile + 2 px padding
        centres = [2 + step * k + (step - 2) / 2 - 0.5 for k in range(len(STRIP_COLUMNS))]  # pixel coordinates
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks(centres, STRIP_COLUMNS, fontsize=8)
        ax.set_yticks([])
        ax.set_title(f"step {int(path.stem.split('_')[1])}", fontsize=9)
    return fig


def inpaint_strips(examples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], per_row: int = 1,
                   panel_size: float = 1.6) -> Figure:
    """(input with hole, result, truth) triples, `per_row` side by side.

    Args:
        examples: (label, truth uint8 (H,W,3), hole bool (H,W), result uint8 (H,W,3)) per strip.
        per_row: strips placed side by side in one figure row.
        panel_size: inches per image.
    """
    if not examples:
        raise ValueError("no examples to show")
    per_row = max(1, min(per_row, len(examples)))
    rows = -(-len(examples) // per_row)
    columns = ("input", "result", "truth")
    fig = NotebookFigure(figsize=(panel_size * 3 * per_row, (panel_size + 0.3) * rows), layout="constrained")
    axes = fig.subplots(rows, 3 * per_row, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for index, (label, truth, hole, result) in enumerate(examples):
        shown = masked_input(truth, hole)  # (H,W,3) white hole
        row, first = divmod(index, per_row)
        for k, (name, panel) in enumerate(zip(columns, (shown, result, truth))):
            ax = axes[row][3 * first + k]
            ax.set_axis_on()
            ax.imshow(np.asarray(panel, dtype=np.uint8), interpolation="nearest")
            hide_ticks(ax)
            ax.set_xlabel(name, fontsize=7)
        axes[row][3 * first + 1].set_title(label, fontsize=8)  # centred over its strip
    return fig
