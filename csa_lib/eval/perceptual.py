"""Perceptual distance: shift-tolerant LPIPS (AlexNet) from the ``stlpips-pytorch`` package.

LPIPS (Zhang et al. 2018) compares two images through the normalised feature maps of a trained
network, weighted per channel by learned 1x1 "linear" heads, averaged over the image and summed
over five layers; 0 means identical, lower is better. The shift-tolerant variant (Ghildyal and
Liu 2022) blurs before every subsampling, so a 1-pixel shift barely moves it while blur does: the
right yardstick for fills, where PSNR rewards blur. The trained backbone and heads ship inside the
package (``weights/vST0.0/alex_shift_tolerant.pth``); this module builds the package's network
without its own loader (which uses ``strict=False`` and would hide a missing weight) and loads the
file itself, checking that every backbone and head tensor is there.

Needs the ``eval`` extra: ``pip install 'csa-inpainting[eval]'``.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csa_lib.eval.metrics import as_image

_EVAL_HINT = "pip install 'csa-inpainting[eval]'"
MIN_SIDE = 21  # smaller images shrink below the reflection padding of the network's last blur-pool
WEIGHTS_FILE = "weights/vST0.0/alex_shift_tolerant.pth"  # inside the stlpips_pytorch package


def _stlpips():
    """The package's LPIPS module, imported on first use (an optional extra) with an install hint."""
    try:
        # the package prints nothing on import today; silenced in case a version does
        with contextlib.redirect_stdout(io.StringIO()):
            from stlpips_pytorch import stlpips  # here: the package is in the optional eval extra
    except ImportError as exc:
        raise ImportError(
            f"LPIPS needs stlpips-pytorch (and torchsummary, which it imports): {_EVAL_HINT}") from exc
    return stlpips


def weights_path() -> Path:
    """Path of the shift-tolerant AlexNet LPIPS weights inside the installed ``stlpips_pytorch``."""
    return Path(_stlpips().__file__).parent / WEIGHTS_FILE


def _alias_keys(model: torch.nn.Module) -> set[str]:
    """Keys of ``lins.N.*``: the ModuleList that holds the same heads as ``linN`` (so loaded with them)."""
    aliases = set()
    for index, head in enumerate(model.lins):
        if head is not getattr(model, f"lin{index}"):
            raise RuntimeError(f"stlpips_pytorch changed: lins[{index}] is not lin{index}")
        aliases.update(f"lins.{index}.{name}" for name in head.state_dict())
    return aliases


def load_lpips(path: str | Path | None = None) -> torch.nn.Module:
    """Build the shift-tolerant AlexNet LPIPS network (CPU, eval mode, no grad) and load every weight.

    ``path`` defaults to the file inside the package. Any tensor missing from the file (other than
    the ``lins.*`` aliases of ``lin0..lin4``), any unexpected one and any shape mismatch is an error.
    """
    stlpips = _stlpips()
    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"LPIPS weights not found: {path}; reinstall them with {_EVAL_HINT}")
    with contextlib.redirect_stdout(io.StringIO()):  # the constructor reports its set-up with print()
        model = stlpips.LPIPS(pretrained=False, net="alex", variant="shift_tolerant", verbose=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of the wrong shape
        raise ValueError(f"LPIPS weights {path} do not fit the shift-tolerant AlexNet: {exc}") from exc
    missing = sorted(set(result.missing_keys) - _alias_keys(model))
    if missing or result.unexpected_keys:
        raise ValueError(f"LPIPS weights {path} do not match the shift-tolerant AlexNet: "
                         f"missing {missing}, unexpected {sorted(result.unexpected_keys)}; "
                         f"reinstall stlpips-pytorch ({_EVAL_HINT})")
    model.eval()
    model.requires_grad_(False)
    return model


@functools.lru_cache(maxsize=1)
def default_model() -> torch.nn.Module:
    """The packaged LPIPS network, built and loaded once per process."""
    return load_lpips()


def to_lpips_input(image: Any) -> torch.Tensor:
    """(H, W, 3) image in [0, 255] (uint8 or float) -> float32 (1, 3, H, W) in [-1, 1], LPIPS's input."""
    array = as_image(image)  # (H, W, 3) float64
    if min(array.shape[:2]) < MIN_SIDE:
        raise ValueError(f"LPIPS needs images of at least {MIN_SIDE} x {MIN_SIDE} pixels, got {array.shape[:2]}")
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))  # (H, W, 3)
    return (tensor.permute(2, 0, 1)[None] / 127.5 - 1.0).contiguous()  # (1, 3, H, W)


def lpips(result: Any, truth: Any, model: torch.nn.Module | None = None) -> float:
    """Shift-tolerant LPIPS (AlexNet) between two (H, W, 3) images in [0, 255]; 0 = identical, lower is better."""
    result_t, truth_t = to_lpips_input(result), to_lpips_input(truth)  # (1, 3, H, W) each
    if result_t.shape != truth_t.shape:
        raise ValueError(f"shape mismatch: result {tuple(result_t.shape)} vs truth {tuple(truth_t.shape)}")
    model = model if model is not None else default_model()
    with torch.no_grad():
        return float(model(result_t, truth_t).item())  # (1, 1, 1, 1) -> float
