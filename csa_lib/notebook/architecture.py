"""The architecture drawn from the modules themselves: every layer, its output size, where CSA sits.

`trace_architecture` builds the generator, both discriminators and the VGG16 slice the feature
discriminator reads on the meta device (shapes only: no memory, no weights, no time), runs one forward
through each with hooks on every convolution, pooling and CSA layer, and records what each produced.
`plot_architecture` draws that record; `stage_summary` says it in one line per stage. Nothing here
is typed in by hand: change `model.py` and the figure follows.

During the trace the CSA layer passes its input through (its search needs real values; its output has
the shape of its input either way).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torchvision
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor, nn

from ..csa_layer import CSALayer
from ..model import CSA_LEVEL, CSAGenerator, DilatedDown, FeatureDiscriminator, PatchDiscriminator
from ..vgg import SLICES
from .viz import NotebookFigure

__all__ = ["LayerInfo", "STAGES", "plot_architecture", "stage_summary", "trace_architecture", "trace_module"]

STAGES = ("coarse net", "refinement net", "image patch D", "VGG16 to pool3", "feature patch D")
_POOL3_END = dict(SLICES)["pool3"]  # the feature discriminator reads vgg16().features[:17]
_COLOURS = {"conv": "#7fa7d9", "down": "#3d6fb6", "up": "#e3a64f", "CSA": "#d62728", "pool": "#9a9a9a"}


@dataclass(frozen=True)
class LayerInfo:
    """One traced layer: its module name, what it is, and its output (channels, height, width)."""

    stage: str
    name: str
    kind: str       # "conv 3x3", "conv 4x4 /2", "dilated conv 4x4 /2", "up-conv 4x4 x2", "CSA", "max-pool /2", ...
    group: str      # colour group: "conv", "down", "up", "CSA", "pool"
    channels: int
    height: int
    width: int


def _describe(module: nn.Module) -> tuple[str, str] | None:
    """(kind, group) of a layer worth drawing, None for everything else (norms, activations, containers)."""
    if isinstance(module, CSALayer):
        return "CSA", "CSA"
    if isinstance(module, DilatedDown):
        return "dilated conv 4x4 /2", "down"
    if isinstance(module, nn.ConvTranspose2d):
        k, s = module.kernel_size[0], module.stride[0]
        return (f"up-conv {k}x{k} x{s}", "up") if s > 1 else (f"transposed conv {k}x{k}", "conv")
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size[0], module.stride[0]
        return (f"conv {k}x{k} /{s}", "down") if s > 1 else (f"conv {k}x{k}", "conv")
    if isinstance(module, nn.MaxPool2d):
        return "max-pool /2", "pool"
    return None


def trace_module(module: nn.Module, stage: str, *inputs: Tensor, prefix: str = "") -> list[LayerInfo]:
    """Run `module(*inputs)` once with hooks on every drawable layer; their outputs in call order."""
    found: list[LayerInfo] = []
    hooks = []
    for name, sub in module.named_modules():
        described = _describe(sub)
        if described is None:
            continue
        kind, group = described

        def record(_m, _inputs, output, name=name, kind=kind, group=group):
            out = output[0] if isinstance(output, tuple) else output  # (B,C,H,W)
            found.append(LayerInfo(stage, prefix + name, kind, group, int(out.shape[1]), int(out.shape[2]),
                                   int(out.shape[3])))
        hooks.append(sub.register_forward_hook(record))
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return found


def trace_architecture(ngf: int = 64, ndf: int = 64, image_size: int = 256) -> dict[str, list[LayerInfo]]:
    """{stage: layers} for a CSAGenerator(ngf, image_size), PatchDiscriminator(ndf), FeatureDiscriminator(ndf)
    and VGG16 up to pool3, each traced on a (1,3,image_size,image_size) input on the meta device."""
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 (the feature discriminator's smallest input), got {image_size}")
    with torch.device("meta"):
        generator = CSAGenerator(ngf, image_size)
        patch_disc, feature_disc = PatchDiscriminator(ndf), FeatureDiscriminator(ndf)
        vgg_pool3 = torchvision.models.vgg16(weights=None).features[:_POOL3_END]
        image = torch.zeros(1, 3, image_size, image_size)
        mask = torch.zeros(1, 1, image_size, image_size)
        pool3 = torch.zeros(1, 256, image_size // 8, image_size // 8)
    for net in (generator, patch_disc, feature_disc, vgg_pool3):
        net.eval()  # as at inference: a norm over a 1x1 map is allowed there
    generator.refine_net.csa.enabled = False  # shapes only: the search cannot run on meta tensors
    try:
        traced = trace_module(generator, "generator", image, mask)
    finally:
        generator.refine_net.csa.enabled = True
    stages = {
        "coarse net": [layer for layer in traced if layer.name.startswith("coarse_net.")],
        "refinement net": [layer for layer in traced if layer.name.startswith("refine_net.")],
        "image patch D": trace_module(patch_disc, "image patch D", image),
        "VGG16 to pool3": trace_module(vgg_pool3, "VGG16 to pool3", image, prefix="features."),
        "feature patch D": trace_module(feature_disc, "feature patch D", pool3),
    }
    return {stage: [replace(layer, stage=stage) for layer in layers] for stage, layers in stages.items()}


def _inputs(image_size: int) -> dict[str, str]:
    """What each stage reads, in words (the same facts `model.py` and `losses.py` state)."""
    s = image_size
    return {
        "coarse net": f"3@{s}x{s}: the image, hole = mean colour",
        "refinement net": f"6@{s}x{s}: [coarse fill pasted in the hole, image with a zero hole]",
        "image patch D": f"3@{s}x{s}: the refined image (or a real photo)",
        "VGG16 to pool3": f"3@{s}x{s}: the refined image (or a real photo), frozen ImageNet VGG16",
        "feature patch D": f"256@{s // 8}x{s // 8}: VGG16 pool3 of that image",
    }


def stage_summary(stages: Mapping[str, Sequence[LayerInfo]], image_size: int = 256) -> list[str]:
    """One line per stage: what it reads, how many layers, what it produces (and where CSA sits)."""
    lines = []
    for stage, layers in stages.items():
        last = layers[-1]
        line = (f"{stage}: reads {_inputs(image_size)[stage]}; {len(layers)} layers; "
                f"gives {last.channels}@{last.height}x{last.width}")
        csa = [layer for layer in layers if layer.group == "CSA"]
        if csa:
            line += f"; CSA at {csa[0].channels}@{csa[0].height}x{csa[0].width} (1/{2 ** CSA_LEVEL} of the image)"
        lines.append(line)
    return lines


def plot_architecture(stages: Mapping[str, Sequence[LayerInfo]], image_size: int = 256) -> Figure:
    """One row per stage, one bar per layer: bar height = log2 of its output side, label = channels and side."""
    rows = list(stages.items())
    widest = max(len(layers) for _, layers in rows)
    fig = NotebookFigure(figsize=(max(10.0, 0.36 * widest + 2.0), 1.9 * len(rows)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(rows), 1))
    top = np.log2(image_size) + 1
    reads = _inputs(image_size)
    for ax, (stage, layers) in zip(axes, rows):
        for i, layer in enumerate(layers):
            height = (np.log2(max(layer.height, 1)) + 1) / top  # 1 = full-size output
            edge = "black" if layer.group == "CSA" else "none"
            ax.add_patch(Rectangle((i, 1 - height), 0.8, height, facecolor=_COLOURS[layer.group], edgecolor=edge,
                                   linewidth=1.5))
            ax.text(i + 0.4, 1 - height - 0.04, f"{layer.channels}\n{layer.height}²", ha="center", va="top",
                    fontsize=6)
            if layer.group == "CSA":
                ax.annotate(f"CSA at 1/{2 ** CSA_LEVEL}: {layer.channels}@{layer.height}x{layer.width}",
                            (i + 0.4, 1.0), (i + 0.4, 1.22), ha="center", fontsize=8, color=_COLOURS["CSA"],
                            arrowprops={"arrowstyle": "->", "color": _COLOURS["CSA"]})
        ax.set_xlim(-0.5, widest)
        ax.set_ylim(-0.45, 1.3)
        skips = "; skip connections join the bars of the same size" if stage.endswith("net") else ""
        ax.set_title(f"{stage}  (reads {reads[stage]}{skips})", fontsize=9, loc="left")
        ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, facecolor=c) for c in _COLOURS.values()]
    fig.legend(handles, ["conv, same size", "down (stride 2)", "up (x2)", "CSA layer", "max-pool"], loc="outside lower center",
               ncol=5, fontsize=8, frameon=False)
    fig.suptitle(f"Layers as csa_lib builds them at {image_size} px: bar height = log2(output side); "
                 "labels = channels, side²", fontsize=10)
    return fig
