"""What the CSA layer buys: the same photos filled with its matches as trained, switched off, or random.

Three modes of the generator's CSA layer (`ABLATION_MODES`), set for a `with` block by `csa_matches`:

* ``"trained"``: the layer as it is (search, then the coherent chain); bit-identical to a plain forward;
* ``"off"``: the layer passes its input through, so the hole cells keep the features the encoder
  computed from the coarse fill: what the refinement net does without attention;
* ``"random"``: every hole cell copies a known cell drawn uniformly at random (seeded) instead of its
  best match; the chain and the search's D_max are kept, so only the choice of match changes.

`fill_modes` runs all three, `ablation_rows` measures PSNR and L1 over the hole against the truth
(`csa_lib.eval.metrics`, on 8-bit images as the rest of the project measures), `plot_ablation` draws them.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from . import metrics, perceptual
from ..csa_layer import MatchFn
from ..notebook.viz import NotebookFigure, hide_ticks, masked_input, to_hwc

__all__ = ["ABLATION_MODES", "ablation_rows", "csa_matches", "describe_ablation", "fill_modes", "mean_by_mode", "plot_ablation",
           "random_known_matches"]

ABLATION_MODES = ("trained", "off", "random")


def random_known_matches(generator: torch.Generator) -> MatchFn:
    """A `match_fn` for the CSA layer: for each of T hole cells a known cell drawn uniformly at random."""
    def pick(known: Tensor, T: int) -> Tensor:
        """known (B,N) bool, T -> (B,T) raster indices of known cells."""
        weights = known.to(torch.float32).cpu()  # (B,N) uniform over the known cells
        return torch.multinomial(weights, T, replacement=True, generator=generator).to(known.device)  # (B,T)
    return pick


def _csa_layer(model: nn.Module) -> nn.Module:
    """The CSA layer of a CSAGenerator (or of a RefineNet); TypeError naming what was passed otherwise."""
    layer = getattr(getattr(model, "refine_net", model), "csa", None)
    if layer is None or not hasattr(layer, "match_fn"):
        raise TypeError(f"expected a CSAGenerator (or its refine_net) with a CSA layer, got {type(model).__name__}")
    return layer


@contextmanager
def csa_matches(model: nn.Module, mode: str, seed: int = 0) -> Iterator[nn.Module]:
    """Inside the block the generator's CSA layer runs in `mode` ("trained", "off" or "random"); restored after."""
    if mode not in ABLATION_MODES:
        raise ValueError(f"mode must be one of {ABLATION_MODES}, got {mode!r}")
    layer = _csa_layer(model)
    saved = layer.enabled, layer.match_fn
    layer.enabled = mode != "off"
    layer.match_fn = random_known_matches(torch.Generator().manual_seed(seed)) if mode == "random" else None
    try:
        yield model
    finally:
        layer.enabled, layer.match_fn = saved


def fill_modes(model: nn.Module, image: Tensor, mask: Tensor, modes: Sequence[str] = ABLATION_MODES,
               seed: int = 0) -> dict[str, Tensor]:
    """image (B,3,H,W) in [-1,1], mask (B,1,H,W) -> {mode: composite (B,3,H,W)}, each from one no-grad forward."""
    fills = {}
    for mode in modes:
        with csa_matches(model, mode, seed), torch.no_grad():
            fills[mode] = model(image, mask).composite  # (B,3,H,W)
    return fills


def _uint8(image: Tensor) -> np.ndarray:
    """(3,H,W) in [-1,1] -> (H,W,3) uint8, rounded as images are saved."""
    return np.round(to_hwc(image) * 255).astype(np.uint8)


def ablation_rows(image: Tensor, mask: Tensor, fills: Mapping[str, Tensor], names: Sequence[str]) -> list[dict]:
    """One row per photo and mode: {"photo", "mode", "psnr_hole" (dB), "l1_hole" ([0,1] scale) over the hole,
    "lpips" (shift-tolerant LPIPS of the whole image, lower is better), "change" (mean |fill - trained
    fill| over the hole, [0,1] scale; present when `fills` has "trained")}."""
    if len(names) != image.shape[0]:
        raise ValueError(f"got {len(names)} names for {image.shape[0]} photos")
    rows = []
    for i, name in enumerate(names):
        truth, hole = _uint8(image[i]), mask[i, 0].cpu().numpy() > 0.5  # (H,W,3), (H,W)
        trained = _uint8(fills["trained"][i]) if "trained" in fills else None
        for mode, fill in fills.items():
            result = _uint8(fill[i])
            row = {"photo": name, "mode": mode, "psnr_hole": metrics.psnr(result, truth, hole, "hole"),
                   "l1_hole": metrics.l1(result, truth, hole, "hole"), "lpips": perceptual.lpips(result, truth)}
            if trained is not None:
                row["change"] = metrics.l1(result, trained, hole, "hole")
            rows.append(row)
    return rows


def mean_by_mode(rows: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """{mode: {key: mean over the photos}} for every numeric key of `ablation_rows` (psnr_hole, l1_hole, change)."""
    modes = dict.fromkeys(row["mode"] for row in rows)
    keys = [k for k in rows[0] if k not in ("photo", "mode")] if rows else []
    return {mode: {key: float(np.mean([r[key] for r in rows if r["mode"] == mode])) for key in keys} for mode in modes}


def describe_ablation(means: Mapping[str, Mapping[str, float]], small: float = 0.01) -> str:
    """A plain sentence from `mean_by_mode`: how far "off" and "random" move the fill and its hole PSNR."""
    if "trained" not in means:
        raise ValueError("describe_ablation needs the 'trained' mode to compare with")
    base = means["trained"]
    parts = []
    for mode, label in (("off", "with the matches switched off"), ("random", "with random matches")):
        if mode in means:
            m = means[mode]
            parts.append(f"{label} the fill moves by {m['change']:.4f} on average (0..1 scale) and the hole PSNR "
                         f"by {m['psnr_hole'] - base['psnr_hole']:+.2f} dB")
    moved = max(means[m]["change"] for m in means if m != "trained")
    verdict = (f"Both changes are small (under {small}): this model's refinement net leans little on what the CSA "
               "layer copies." if moved < small else
               "The attention visibly shapes the fill: the copied features reach the output.")
    return f"Against the layer as trained ({base['psnr_hole']:.2f} dB over the hole): " + "; ".join(parts) + \
        f". {verdict}"


def plot_ablation(image: Tensor, mask: Tensor, fills: Mapping[str, Tensor], rows: Sequence[Mapping],
                  names: Sequence[str]) -> Figure:
    """Grid: one row per photo (input, one column per mode with its hole PSNR / L1, truth)."""
    n, modes = image.shape[0], list(fills)
    fig = NotebookFigure(figsize=(2.3 * (len(modes) + 2), 2.5 * n), layout="constrained")
    axes = np.array(fig.subplots(n, len(modes) + 2, squeeze=False))
    score = {(r["photo"], r["mode"]): r for r in rows}
    for i, name in enumerate(names):
        panels = [("input", masked_input(image[i:i + 1], mask[i:i + 1]))]
        panels += [(mode, fills[mode][i:i + 1]) for mode in modes] + [("truth", image[i:i + 1])]
        for ax, (title, picture) in zip(axes[i], panels):
            ax.imshow(to_hwc(picture), interpolation="nearest")
            if (name, title) in score:
                r = score[(name, title)]
                title = f"{title}\n{r['psnr_hole']:.2f} dB, LPIPS {r['lpips']:.3f}"
            elif title == "input":
                title = f"{name}\ninput"
            ax.set_title(title, fontsize=9)
            hide_ticks(ax)
    fig.suptitle("CSA matches as trained, switched off, random (PSNR / L1 over the hole)", fontsize=10)
    return fig
