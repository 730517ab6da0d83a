"""Pictures of training: sample strips (input with hole, coarse, refined, composite, truth) and loss curves.

`loss_plot` and `LivePlot` use `matplotlib.figure.Figure` directly (no pyplot state), so they work
headless and display inline in notebooks.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor
from torchvision.utils import make_grid

from .utils import to_pil

STRIP_COLUMNS = ("input", "coarse", "refined", "composite", "truth")
LOSS_GROUPS: dict[str, tuple[str, ...]] = {
    "reconstruction (L1)": ("l1_coarse", "l1_refined"),
    "adversarial": ("adv_image", "adv_feature", "d_image", "d_feature"),
    "consistency": ("consistency_csa", "consistency_decoder"),
    "total": ("g_total", "d_total"),
}


def masked_input(image: Tensor, mask: Tensor, fill: float = 1.0) -> Tensor:
    """(B,3,H,W) image with its hole (mask (B,1,H,W), 1 = hole) painted `fill` (white by default)."""
    return torch.where(mask > 0.5, torch.full_like(image, fill), image)  # (B,3,H,W)


def sample_strip(image: Tensor, mask: Tensor, out: Any, max_rows: int = 4) -> Tensor:
    """Grid (3, rows*H', 5*W') in [-1,1]: one row per sample: input with hole, coarse, refined, composite, truth."""
    n = min(max_rows, image.shape[0])
    columns = [masked_input(image[:n], mask[:n]), out.coarse[:n], out.refined[:n], out.composite[:n], image[:n]]
    tiles = torch.stack([c.detach().float().cpu().clamp(-1, 1) for c in columns], dim=1)  # (n,5,3,H,W)
    return make_grid(tiles.flatten(0, 1), nrow=len(columns), padding=2, pad_value=-1.0)  # (3, H', W')


def save_sample_strip(path: str | os.PathLike, image: Tensor, mask: Tensor, out: Any, max_rows: int = 4) -> Path:
    """Write `sample_strip(...)` as a PNG (parent folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(sample_strip(image, mask, out, max_rows)).save(path)
    return path


def loss_plot(history: Sequence[dict[str, float]], keys: Sequence[str] | None = None,
              figsize: tuple[float, float] | None = None) -> Figure:
    """Loss curves against step from history rows ({"step": ..., loss: ...}); one panel per loss group."""
    if keys is not None:
        groups = {"losses": tuple(keys)}
    else:
        groups = {name: ks for name, ks in LOSS_GROUPS.items() if any(k in row for row in history for k in ks)}
        groups = groups or {"losses": tuple(k for k in (history[0] if history else {}) if k not in ("step", "epoch"))}
    fig = Figure(figsize=figsize or (4.0 * len(groups), 3.0), layout="constrained")
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
            from IPython.display import display
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
