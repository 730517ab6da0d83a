"""The attention explorer: a notebook widget that steps through the hole cells of one CSA record.

A sample dropdown and a hole-cell slider (raster order) redraw `attention.plot_score_map` for the
cell picked; the static pictures it draws are in `attention.py`.
"""
from __future__ import annotations

from matplotlib.figure import Figure
from torch import Tensor

from ..csa_layer import CSAAttention
from .attention import hole_index, hole_positions, plot_score_map

__all__ = ["AttentionExplorer", "attention_explorer"]


def _widgets():
    import ipywidgets  # optional (the `notebooks` extra): only the explorer needs it

    return ipywidgets


class AttentionExplorer:
    """Sample dropdown + hole-cell slider (raster order) that redraws `plot_score_map`; `.widget` is the UI."""

    def __init__(self, attention: CSAAttention, image: Tensor | None = None) -> None:
        W = _widgets()
        self.attention, self.image = attention, image
        self.figure: Figure | None = None
        batch = attention.hole.shape[0]
        self.sample = W.Dropdown(options=list(range(batch)), value=0, description="sample")
        self.slider = W.IntSlider(value=0, min=0, max=0, description="hole cell", continuous_update=False)
        self.label = W.Label()
        self.output = W.Output()
        self.widget = W.VBox([W.HBox([self.sample, self.slider, self.label]), self.output])
        self.sample.observe(lambda _c: self._on_sample(), names="value")
        self.slider.observe(lambda _c: self.redraw(), names="value")
        self._on_sample()

    @property
    def position(self) -> tuple[int, int]:
        """(row, col) of the hole cell the slider points at."""
        return hole_positions(self.attention, self.sample.value)[self.slider.value]

    def select(self, row: int, col: int, sample: int | None = None) -> None:
        """Move the controls to hole cell (row, col) (ValueError if it is not a hole cell)."""
        if sample is not None:
            self.sample.value = sample
        self.slider.value = hole_index(self.attention, self.sample.value, row, col)

    def _on_sample(self) -> None:
        cells = hole_positions(self.attention, self.sample.value)
        if not cells:
            raise ValueError(f"sample {self.sample.value} has no hole cell to explore")
        self.slider.max = len(cells) - 1
        self.slider.value = min(self.slider.value, self.slider.max)
        self.redraw()

    def redraw(self) -> None:
        """Draw the score map of the selected hole cell into the output area."""
        from IPython.display import display  # here: IPython exists only in notebooks (the notebooks extra)

        row, col = self.position
        self.label.value = f"cell ({row}, {col}) of {self.slider.max + 1}"
        image = self.image
        if image is not None and image.dim() == 4:
            image = image[self.sample.value]
        self.figure = plot_score_map(self.attention, self.sample.value, row, col, image=image)
        with self.output:
            self.output.clear_output(wait=True)
            display(self.figure)

    def _ipython_display_(self) -> None:
        from IPython.display import display  # here: IPython exists only in notebooks (the notebooks extra)

        display(self.widget)


def attention_explorer(attention: CSAAttention, image: Tensor | None = None) -> AttentionExplorer:
    """An `AttentionExplorer` for `attention` (image (B,3,H,W) in [-1,1] adds the picture on the image)."""
    return AttentionExplorer(attention, image)
