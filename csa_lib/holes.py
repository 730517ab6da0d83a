"""Holes: the one mask rule, masks written as files, the known pixels pasted back, the mask warnings.

`csa_lib.imageio` reads a mask in any form into its intensity plane (`mask_plane`); this module
turns a plane into a hole. Every caller (`inference.inpaint`, `masks.load_mask`, `evaluate`, the
widget, `demo`) goes through `read_mask` (or `fit_mask`, when a mask is brought to a size before it
is thresholded), so a mask file means the same hole everywhere; `composite` pastes the known pixels
back (arrays and tensors) and `mask_image` writes a hole as the 0/255 image `read_mask` reads back.

Masks, `read_mask(...) -> bool (H, W)`, True = hole (the pixels to fill). **The one mask rule**: a pixel
is a hole when its intensity is at least half of the full scale: >= 128 for 8-bit, >= 32768 for
16-bit, > 0.5 for floats, True for bools; an integer mask holding only 0 and 1 is a 0/1 mask.
Colour masks use their luminance (PIL's "L"). A mask with an alpha channel uses its colour unless
the colour carries nothing (one value everywhere) while the alpha varies: then opaque = hole (alpha
>= 128), which is what an image editor exports for strokes painted on a transparent layer. The
same EXIF, bit-depth, NaN, empty and size rules as for photos apply (`csa_lib.imageio`).

A mask should be near-binary. `looks_like_photo` tells one that is not: over 30 % of its pixels grey
(between 32 and 223 of 255, far from both black and white) in more than 16 distinct levels.
Antialiased strokes (2-5 % grey) and JPEG-compressed masks (0-1 %) pass; photos (mostly 50-98 %) do not.
`inference.inpaint` warns about such a mask (`warn_if_photo`) and about one with no hole at all.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from PIL import Image

from . import imageio
from .imageio import MAX_PIXELS, ImageLike

__all__ = [
    "GREY_BAND", "MOSTLY_HOLE", "PHOTO_GREY_SHARE", "PHOTO_LEVELS", "composite", "fit_mask", "grey_share",
    "hole_of", "looks_like_photo", "mask_image", "read_mask", "warn_if_mostly_hole", "warn_if_no_hole",
    "warn_if_photo",
]

MOSTLY_HOLE = 0.75
"""Hole share of a photo above which `warn_if_mostly_hole` asks whether the mask is inverted."""

GREY_BAND = (32 / 255, 223 / 255)
"""Intensities (on a 0..1 scale; 32..223 in 8 bits) far from both black and white: 1/8 of the scale from either end."""

PHOTO_GREY_SHARE = 0.3
"""Share of a mask's pixels inside GREY_BAND above which the mask looks like a photo (`looks_like_photo`).

Measured (tests/test_imageio.py): a black-and-white mask has 0 %, the same saved as JPEG quality 75
(its ringing) 0-1 %, antialiased brush strokes 2-5 %, even a mask feathered by a 2-px Gaussian blur
10-22 %; the four sample photos 50-98 %. Of 131 images (scikit-image's and the evaluation photos)
124 are flagged; the others (a chessboard, a silhouette, a phantom, a star field, two photos over
three quarters black) are near-binary in effect: black and white, or mostly black."""

PHOTO_LEVELS = 16
"""A mask of at most this many distinct intensities is drawn (two-level, a few painted greys), never a photo."""


def hole_of(plane: Image.Image) -> np.ndarray:
    """The one mask rule on a `mask_plane`: bool (H, W), True where intensity >= 128 ("L") or > 0.5 ("F")."""
    values = np.asarray(plane)
    return values > 0.5 if plane.mode == "F" else values >= 128


def read_mask(mask: ImageLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """A path, bytes, PIL image, array or tensor -> bool (H, W), True = hole, by the one mask rule."""
    return hole_of(imageio.mask_plane(mask, max_pixels))


def mask_image(hole: np.ndarray) -> Image.Image:
    """A bool (H, W) hole (or 0/1 values) -> PIL "L" image, 255 = hole, 0 = known: what `read_mask` reads back."""
    hole = np.asarray(hole)
    if hole.ndim != 2:
        raise ValueError(f"mask_image needs an (H, W) hole, got shape {hole.shape}")
    return Image.fromarray((hole > 0.5 if hole.dtype != bool else hole).astype(np.uint8) * np.uint8(255), mode="L")


def fit_mask(mask: ImageLike, size: int | tuple[int, int]) -> np.ndarray:
    """A mask in any form -> bool hole of `size` ((width, height) or a square): `mask_plane`, `fit` (bilinear), `hole_of`.

    Training's folder masks and the evaluation's both come through here, so a mask file means the same
    hole to both: cropped as the photo it goes on, scaled bilinearly, then thresholded by the one mask rule.
    """
    return hole_of(imageio.fit(imageio.mask_plane(mask), size, Image.Resampling.BILINEAR))


def warn_if_mostly_hole(hole: np.ndarray, limit: float = MOSTLY_HOLE, stacklevel: int = 3) -> None:
    """UserWarning when the hole covers more than ``limit`` of the image: the mask is likely inverted.

    ``stacklevel`` (as `warnings.warn` takes it, counted from here) picks the line the warning names.
    """
    ratio = float(np.mean(hole))
    if ratio > limit:
        warnings.warn(f"the mask covers {ratio:.0%} of the image: is the mask inverted? White (or 1, True) = hole, "
                      "the pixels to fill; invert it with 255 - mask (or ~mask)", UserWarning, stacklevel=stacklevel)


def grey_share(plane: Image.Image) -> float:
    """Share of a `mask_plane`'s pixels in GREY_BAND: grey, far from both black and white (0 for a black-and-white mask)."""
    values = np.asarray(plane)
    if plane.mode == "L":
        low, high = round(GREY_BAND[0] * 255), round(GREY_BAND[1] * 255)
    else:
        low, high = GREY_BAND
    return float(np.mean((values >= low) & (values <= high)))


def looks_like_photo(plane: Image.Image) -> bool:
    """True when a `mask_plane` is not near-binary: over PHOTO_GREY_SHARE of it grey, in over PHOTO_LEVELS levels.

    A mask of a few levels (two, or a few painted greys) is drawn, not photographed, however grey its
    levels; antialiased and JPEG-compressed masks have many levels but stay far below the grey share.
    """
    values = np.asarray(plane)
    levels = np.count_nonzero(np.bincount(values.ravel())) if plane.mode == "L" else len(np.unique(values))
    return levels > PHOTO_LEVELS and grey_share(plane) > PHOTO_GREY_SHARE


def warn_if_photo(plane: Image.Image, stacklevel: int = 3) -> None:
    """UserWarning, naming the mask rule, when a `mask_plane` looks like a photo (`looks_like_photo`)."""
    if looks_like_photo(plane):
        warnings.warn(f"the mask looks like a photo, not a black-and-white mask: {grey_share(plane):.0%} of its "
                      f"pixels are grey (between {GREY_BAND[0] * 255:.0f} and {GREY_BAND[1] * 255:.0f}). The mask "
                      f"rule: a pixel is a hole when it is at least half intensity (>= 128 in an 8-bit mask), so "
                      f"{float(np.mean(hole_of(plane))):.0%} of this one is hole. Pass a mask with white (255) "
                      "where the photo is to be filled and black (0) elsewhere", UserWarning, stacklevel=stacklevel)


def warn_if_no_hole(hole: np.ndarray, stacklevel: int = 3) -> None:
    """UserWarning when the mask has no hole at all: the photo comes back unchanged."""
    if not hole.any():
        warnings.warn("the mask has no hole, so the photo is returned unchanged: no pixel is at least half "
                      "intensity (>= 128 in an 8-bit mask); paint the hole white (255) on black",
                      UserWarning, stacklevel=stacklevel)


def composite(fill: np.ndarray | torch.Tensor, image: np.ndarray | torch.Tensor,
              hole: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Paste the known pixels back: `fill` in the hole, `image` elsewhere; the library's one paste.

    Arrays: (H,W,C) fill and image, (H,W) bool hole -> (H,W,C) of image's dtype. Tensors: (C,H,W) or
    (B,C,H,W) fill and image, (H,W), (1,H,W) or (B,1,H,W) bool hole -> a tensor of their shape (autograd kept).
    """
    if isinstance(image, torch.Tensor):
        hole_t = torch.as_tensor(hole, device=image.device).bool()
        if hole_t.dim() == image.dim() - 1:
            hole_t = hole_t[None]  # (1,H,W) over the channels
        if (fill.shape != image.shape or hole_t.dim() != image.dim() or hole_t.shape[-3] != 1
                or hole_t.shape[-2:] != image.shape[-2:]):
            raise ValueError(f"composite needs fill and image of one shape and a hole of their H, W, got "
                             f"{tuple(fill.shape)}, {tuple(image.shape)} and {tuple(hole_t.shape)}")
        return torch.where(hole_t, fill, image)  # (C,H,W) or (B,C,H,W)
    fill, image, hole = np.asarray(fill), np.asarray(image), np.asarray(hole, dtype=bool)
    if fill.shape != image.shape or hole.shape != image.shape[:2]:
        raise ValueError(f"composite needs fill and image of one shape and an (H, W) hole, got "
                         f"{fill.shape}, {image.shape} and {hole.shape}")
    return np.where(hole[..., None], fill, image).astype(image.dtype)  # (H,W,C)
