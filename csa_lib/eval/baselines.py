"""Classical (non-learned) inpainting baselines, all with one signature.

``fn(image, mask) -> filled``: ``image`` uint8 (H, W, 3) RGB, ``mask`` (H, W) bool, float or 8-bit
with the hole by ``imageio``'s one mask rule (``metrics.as_hole``); returns uint8 (H, W, 3). Hole pixels
are zeroed before the library sees them (so no ground truth leaks in) and known pixels are returned
unchanged (`_baseline` is that frame, around every method).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from csa_lib import holes
from csa_lib.eval.metrics import as_hole

_EVAL_HINT = "pip install 'csa-inpainting[eval]'"

Inpainter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _prepare(image: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert inputs -> (uint8 (H, W, 3) with hole zeroed, bool (H, W) hole)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    hole = as_hole(mask)  # (H, W) bool
    if hole.shape != image.shape[:2]:
        raise ValueError(f"mask shape {hole.shape} does not match image shape {image.shape[:2]}")
    if hole.all():
        raise ValueError("mask covers the whole image: nothing known to inpaint from")
    return holes.composite(np.zeros_like(image), image, hole), hole  # no truth in the hole


def _baseline(image: Any, mask: Any, fill: Callable[[np.ndarray, np.ndarray], Any]) -> np.ndarray:
    """Every baseline's frame: blank the hole, ``fill(masked, hole)`` -> (H, W, 3) in [0, 255], paste known pixels back."""
    masked, hole = _prepare(image, mask)
    if not hole.any():
        return masked
    filled = np.clip(np.rint(fill(masked, hole)), 0, 255).astype(np.uint8)  # (H, W, 3)
    return holes.composite(filled, masked, hole)


def _require(module: str, need: str) -> Any:
    """Import an optional package's module lazily; ImportError saying what `need`s it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{need}: {_EVAL_HINT}") from exc


def _cv2_inpaint(image: np.ndarray, mask: np.ndarray, flag_name: str, radius: int) -> np.ndarray:
    """Shared body of the two OpenCV methods: (H, W, 3) uint8 -> (H, W, 3) uint8."""
    cv2 = _require("cv2", "this baseline needs OpenCV")
    return _baseline(image, mask, lambda masked, hole: cv2.inpaint(masked, hole.astype(np.uint8), radius,
                                                                    getattr(cv2, flag_name)))


def telea(image: np.ndarray, mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Telea fast marching (cv2.INPAINT_TELEA, radius 3): uint8 (H, W, 3), (H, W) hole -> uint8 (H, W, 3)."""
    return _cv2_inpaint(image, mask, "INPAINT_TELEA", radius)


def navier_stokes(image: np.ndarray, mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Navier-Stokes inpainting (cv2.INPAINT_NS, radius 3): uint8 (H, W, 3), (H, W) hole -> uint8 (H, W, 3)."""
    return _cv2_inpaint(image, mask, "INPAINT_NS", radius)


def biharmonic(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Biharmonic fill (skimage.restoration.inpaint_biharmonic): uint8 (H, W, 3), (H, W) hole -> uint8 (H, W, 3)."""
    restoration = _require("skimage.restoration", "biharmonic needs scikit-image")
    return _baseline(image, mask, lambda masked, hole: 255.0 * restoration.inpaint_biharmonic(
        masked.astype(np.float64) / 255.0, hole, channel_axis=-1))  # (H, W, 3) in [0, 1], scaled


def patchmatch(image: np.ndarray, mask: np.ndarray, patch_size: int = 3, seed: int = 0) -> np.ndarray:
    """PatchMatch fill (Barnes et al. 2009, ``pypatchmatch``; patch radius 3, seeded): uint8 (H, W, 3) -> uint8 (H, W, 3).

    Copies patches of the known image into the hole, so texture and edges continue. The search is
    randomised; the library's seed is set before every call, so equal inputs give equal fills.
    """
    patch_match = _require("patchmatch.patch_match", "patchmatch needs pypatchmatch")  # the optional eval extra

    def fill(masked: np.ndarray, hole: np.ndarray) -> np.ndarray:
        patch_match.set_random_seed(seed)
        return patch_match.inpaint(masked, np.asarray(holes.mask_image(hole)), patch_size=patch_size)  # (H, W, 3)

    return _baseline(image, mask, fill)


def fsr_fast(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Frequency-selective reconstruction (cv2.xphoto.INPAINT_FSR_FAST, opencv-contrib): uint8 (H, W, 3) -> uint8 (H, W, 3).

    Models each block around the hole as a sum of Fourier basis functions fitted to the known
    pixels, so periodic texture continues. Deterministic.
    """
    cv2 = _require("cv2", "this baseline needs OpenCV")
    if not hasattr(cv2, "xphoto"):
        raise ImportError(f"fsr_fast needs opencv-contrib-python-headless (cv2.xphoto), not plain OpenCV: "
                          f"pip uninstall opencv-python-headless, then {_EVAL_HINT}")

    def fill(masked: np.ndarray, hole: np.ndarray) -> np.ndarray:
        bgr = np.ascontiguousarray(masked[..., ::-1])  # (H, W, 3), FSR expects BGR
        known = (~hole).astype(np.uint8)  # xphoto's mask: nonzero = KNOWN, the opposite of cv2.inpaint
        filled = np.zeros_like(bgr)  # (H, W, 3) written by xphoto.inpaint
        cv2.xphoto.inpaint(bgr, known, filled, cv2.xphoto.INPAINT_FSR_FAST)
        return filled[..., ::-1]  # (H, W, 3) RGB

    return _baseline(image, mask, fill)


def mean_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the hole with the per-channel mean of the known pixels: uint8 (H, W, 3) -> uint8 (H, W, 3)."""
    return _baseline(image, mask, lambda masked, hole: np.broadcast_to(masked[~hole].mean(axis=0), masked.shape))


BASELINES: dict[str, Inpainter] = {
    "telea": telea,
    "navier_stokes": navier_stokes,
    "biharmonic": biharmonic,
    "patchmatch": patchmatch,
    "fsr_fast": fsr_fast,
    "mean_fill": mean_fill,
}
