"""Reading photos and masks, one way for the whole library: files, encoded bytes, PIL images, arrays, tensors.

Every caller (`inference.inpaint`, `data.ImageFolder`, `evaluate`, the widget, `demo`) reads photos
through `read_image`, and masks through `mask_plane`, which `csa_lib.holes` turns into holes by the
one mask rule (`holes.read_mask`), so a file means the same thing everywhere. The same goes for the
few other things done to files and photos, each in one place: `find_images` / `list_images` search
folders and `fit` brings a photo or a mask plane to a size (centre crop, then one resampler).

Photos, `read_image(...) -> uint8 (H, W, 3) RGB`, read as cameras and scanners write them:
- EXIF orientation is applied (files, bytes and PIL images alike), so a photo is the way it is shown.
- 16-bit images (PNG/TIFF mode ``I;16``, ``uint16`` arrays) are scaled by 255/65535; 32-bit integer
  ones by 255/(2^32-1) (``uint32`` arrays) or 255/(2^31-1) (PIL's signed mode ``I``, as 32-bit TIFFs
  open; taken as 8-bit when every value is at most 255, as 16-bit when at most 65535). Other integer
  arrays must hold 0..255.
- Floats (arrays, PIL mode ``F``) are in [0, 1] (overshoots below 1.5 and above -0.5 are clipped;
  anything further is another scale and an error). Tensors follow the library's convention:
  ``(3,H,W)``, ``(1,3,H,W)`` or ``(H,W)`` floats in [-1, 1].
- Alpha is composited on white, whatever the input type: transparent = white.
- Greyscale comes back as RGB with three equal channels (`is_grey` tells).
- NaN or infinite pixels, an empty (0 x 0) image and one over `MAX_PIXELS` (50 megapixels) are
  ValueErrors; for files and bytes the size is checked from the header, before anything is decoded.

Masks, `mask_plane(...) -> PIL image` (mode "L", or "F" for floats): the mask's intensity, by the same
EXIF, bit-depth, NaN, empty and size rules. Colour masks use their luminance (PIL's "L"); a mask whose
colour carries nothing (one value everywhere) while its alpha varies is its alpha (opaque strokes on a
transparent layer). `csa_lib.holes` documents the one mask rule that thresholds the plane.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS", "MAX_PIXELS", "ImageLike", "NoImagesError", "find_images", "fit", "is_grey", "list_images",
    "mask_plane", "open_image", "read_image",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
"""File endings (case-insensitive) of images and masks, for every folder the library searches."""

MAX_PIXELS = 50_000_000
"""Largest photo or mask read (width x height); below PIL's own decompression-bomb limits, so it fires first."""

ImageLike = Union[Image.Image, np.ndarray, torch.Tensor, str, os.PathLike, bytes, bytearray, memoryview]

_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, EOFError)  # what PIL raises on a bad file
_FLOAT_SLACK = 0.5  # floats this far outside [0, 1] are clipped; further out they are on another scale


def list_images(root: str | Path, recursive: bool = True) -> list[Path]:
    """Files under ``root`` ending in one of IMAGE_EXTENSIONS (any case), sorted; [] if none (or no folder)."""
    root = Path(root)
    if not root.is_dir():
        return []
    candidates = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


class NoImagesError(FileNotFoundError, ValueError):
    """A folder that is missing or holds no IMAGE_EXTENSIONS file (a FileNotFoundError and a ValueError both)."""


def find_images(root: str | Path, what: str = "image", hint: str = "") -> list[Path]:
    """`list_images(root)` (recursive), or NoImagesError naming the folder, the extensions searched and `hint`.

    The one check behind the image folders of training (`data.find_images`), the mask folders
    (`masks.find_mask_files`) and the evaluation's photo and mask folders.
    """
    root = Path(root)
    accepted = ", ".join(IMAGE_EXTENSIONS)
    if not root.is_dir():
        raise NoImagesError(f"{what} folder '{root}' does not exist or is not a folder "
                            f"(expected {what} files with extensions {accepted}, searched recursively){hint}")
    files = list_images(root)
    if not files:
        raise NoImagesError(f"{what} folder '{root}' holds no {what} files: expected files with extensions "
                            f"{accepted} (searched recursively){hint}")
    return files


def _check_size(width: int, height: int, what: str, max_pixels: int | None) -> None:
    """ValueError for an empty image or one over ``max_pixels``."""
    if width == 0 or height == 0:
        raise ValueError(f"{what} is empty ({width}x{height} pixels): pass an image with pixels in it")
    if max_pixels is not None and width * height > max_pixels:
        raise ValueError(f"{what} is {width}x{height} = {width * height / 1e6:.1f} megapixels, over the limit of "
                         f"{max_pixels / 1e6:g} megapixels; scale it down first (e.g. PIL's Image.thumbnail)")


def open_image(source: Image.Image | str | os.PathLike | bytes | bytearray | memoryview, what: str = "image",
               max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """A path, encoded bytes or PIL image -> decoded PIL image (its own mode), EXIF orientation applied.

    The size is checked from the file's header before the pixels are decoded. ValueError names a
    missing, unreadable, empty or too large file.
    """
    if isinstance(source, Image.Image):
        _check_size(*source.size, what, max_pixels)
        return _upright(source, what)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{what} file not found: {path}")
        label, opened = f"{what} file {path}", path
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label, opened = f"{what} data", io.BytesIO(bytes(source))
    else:
        raise ValueError(f"unsupported {what} type {type(source).__name__}")
    try:
        with Image.open(opened) as pil:
            _check_size(*pil.size, label, max_pixels)  # header only: nothing decoded yet
            pil.load()
            return _upright(pil, label)
    except Image.DecompressionBombError as error:
        raise ValueError(f"{label} is too large to decode safely: {error}") from error
    except _PIL_ERRORS as error:
        raise ValueError(f"cannot read {label}: {error}") from error


def _upright(pil: Image.Image, what: str) -> Image.Image:
    """The image turned as its EXIF orientation tag says (a copy; the tag is dropped); a damaged tag warns."""
    try:
        return ImageOps.exif_transpose(pil)
    except (*_PIL_ERRORS, ValueError, KeyError, TypeError) as error:  # a damaged EXIF block: keep the pixels
        warnings.warn(f"{what}: ignoring its unreadable EXIF orientation ({error})", UserWarning, stacklevel=4)
        return pil.copy()


def _scale_int(array: np.ndarray, bits: int) -> np.ndarray:
    """Non-negative integers of ``bits`` bits -> uint8, rounded: v * 255 / (2**bits - 1) (31 = PIL's signed "I")."""
    if bits == 8:
        return array.astype(np.uint8)
    if bits == 16:
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.rint(array.astype(np.float64) * (255.0 / (2.0 ** bits - 1))).astype(np.uint8)


def _int_bits(array: np.ndarray, what: str) -> int:
    """Bits of a PIL mode "I" (signed 32-bit) image: 8, 16 or 31, from the largest value; negatives are an error."""
    low, high = int(array.min()), int(array.max())
    if low < 0:
        raise ValueError(f"{what} holds negative pixel values (down to {low}): expected 0..255, 16- or 32-bit")
    return 8 if high <= 255 else 16 if high <= 65535 else 31


def _pil_array(pil: Image.Image, what: str) -> np.ndarray:
    """A PIL image -> uint8 (H,W), (H,W,2) grey+alpha, (H,W,3), (H,W,4) RGBA; float32 (H,W) for mode F; 16/32 bit scaled."""
    mode = pil.mode
    if mode.startswith("I;16"):
        return _scale_int(np.asarray(pil), 16)
    if mode == "I":
        array = np.asarray(pil)
        return _scale_int(array, _int_bits(array, what))
    if mode == "F":
        return np.asarray(pil, dtype=np.float32)
    if mode == "1":
        return np.asarray(pil.convert("L"))
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(pil)
    if mode in ("P", "PA"):
        alpha = mode == "PA" or "transparency" in pil.info
        return np.asarray(pil.convert("RGBA" if alpha else "RGB"))
    if mode == "La":
        return np.asarray(pil.convert("LA"))
    if mode == "RGBa":
        return np.asarray(pil.convert("RGBA"))
    return np.asarray(pil.convert("RGB"))  # CMYK, YCbCr, LAB, HSV, RGBX


def _int_array(array: np.ndarray, what: str) -> np.ndarray:
    """An integer array -> uint8 on the 8-bit scale (uint16 and uint32 scaled; others must hold 0..255)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return _scale_int(array, 16)
    if array.dtype == np.uint32:
        return _scale_int(array, 32)
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 255:
        raise ValueError(f"{what} array of {array.dtype} holds values {low}..{high}: pass uint8 (0..255), "
                         "uint16 (16-bit), uint32 (32-bit) or floats in [0, 1]")
    return array.astype(np.uint8)


def _raw(source: Any, what: str, max_pixels: int | None, binary: bool) -> np.ndarray:
    """Any input -> (H,W), (H,W,2), (H,W,3) or (H,W,4); uint8 on the 8-bit scale, or float32 on [0, 1] scale.

    ``binary``: integer values that are all 0 or 1 are a 0/1 mask (scaled to 0/255).
    """
    if isinstance(source, torch.Tensor):
        source = _tensor_array(source, what)
    if isinstance(source, np.ndarray):
        array = source
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ValueError(f"{what} must be HxW, HxWx3 or HxWx4, got shape {source.shape}")
        _check_size(array.shape[1], array.shape[0], what, max_pixels)
        if array.dtype == bool:
            return array.astype(np.uint8) * np.uint8(255)
        if np.issubdtype(array.dtype, np.floating):
            return _float_array(array, what)
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{what} array must be uint8, uint16, uint32, bool or float, got {array.dtype}")
    else:
        pil = open_image(source, what, max_pixels)
        if pil.mode == "F":
            return _float_array(np.asarray(pil), what)
        if not (binary and pil.mode in ("L", "I", "I;16", "I;16L", "I;16B", "I;16N")):
            return _pil_array(pil, what)
        array = np.asarray(pil)
    if binary and int(array.min()) >= 0 and int(array.max()) <= 1:  # a 0/1 mask
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype == np.int32 and not isinstance(source, np.ndarray):  # PIL mode "I"
        return _scale_int(array, _int_bits(array, what))
    if array.dtype.byteorder == ">":  # PIL's I;16B
        array = array.astype(array.dtype.newbyteorder("="))
    return _int_array(array, what)


def _tensor_array(tensor: torch.Tensor, what: str) -> np.ndarray:
    """A tensor -> array: (3,H,W) / (1,3,H,W) / (1,H,W) / (1,1,H,W) / (H,W); float images in [-1, 1] to [0, 1]."""
    t = tensor.detach().to("cpu")
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]  # a batch of one
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]  # one channel
    if t.dim() == 3:
        if t.shape[0] not in (3, 4):
            raise ValueError(f"{what} tensor must be (3,H,W), (1,3,H,W), (1,H,W) or (H,W), got {tuple(tensor.shape)}")
        t = t.permute(1, 2, 0)
    elif t.dim() != 2:
        raise ValueError(f"{what} tensor must be (3,H,W), (1,3,H,W), (1,H,W) or (H,W), got {tuple(tensor.shape)}")
    if t.is_floating_point():
        t = t.float()
        if what == "image":
            t = (t + 1) / 2  # the library's images are in [-1, 1]
    return t.numpy()


def _float_array(array: np.ndarray, what: str) -> np.ndarray:
    """Floats -> float32 in [0, 1]; NaN/inf and values on another scale are ValueErrors."""
    array = np.asarray(array, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - np.count_nonzero(finite))
        raise ValueError(f"{what} has {bad} NaN or infinite pixel value(s): replace them (e.g. np.nan_to_num) first")
    low, high = float(array.min()), float(array.max())
    if low < -_FLOAT_SLACK or high > 1 + _FLOAT_SLACK:
        raise ValueError(f"float {what} values must be in [0, 1], got {low:g}..{high:g}: divide 0..255 values "
                         "by 255 (or pass uint8); map [-1, 1] values with (x + 1) / 2")
    return np.clip(array, 0.0, 1.0)


def read_image(image: ImageLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """A path, bytes, PIL image, array or tensor -> uint8 (H, W, 3) RGB, by the rules in this module's docstring."""
    array = _raw(image, "image", max_pixels, binary=False)
    if array.dtype != np.uint8:  # float32 in [0, 1]
        array = np.rint(array * 255.0).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] in (2, 4):  # alpha over white
        colour = array[..., :-1].astype(np.uint16)
        alpha = array[..., -1:].astype(np.uint16)
        array = ((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.array(array, dtype=np.uint8, copy=True)


def is_grey(pixels: np.ndarray) -> bool:
    """True when an (H, W, 3) image has three equal channels (a greyscale photo)."""
    return bool(np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2]))


def _luminance(colour: np.ndarray) -> np.ndarray:
    """(H,W,C) colour -> (H,W) grey: PIL's "L" weights for 3 channels, the channel itself for one."""
    if colour.shape[2] == 1:
        return colour[..., 0]
    if colour.dtype == np.uint8:
        return np.asarray(Image.fromarray(np.ascontiguousarray(colour)).convert("L"))
    return colour @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _constant(plane: np.ndarray) -> bool:
    """True when every value of the plane is the same."""
    return bool((plane == plane.flat[0]).all())


def mask_plane(mask: ImageLike, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """A mask in any form -> its intensity as a PIL image: mode "L" (0..255) or "F" (floats in [0, 1]).

    Resize this (as training does) before `holes.hole_of` thresholds it; `holes.read_mask` is both in one call.
    """
    array = _raw(mask, "mask", max_pixels, binary=True)
    if array.ndim == 3:
        has_alpha = array.shape[2] in (2, 4)
        colour = array[..., :-1] if has_alpha else array
        grey = _luminance(colour)
        if has_alpha and _constant(grey) and not _constant(array[..., -1]):
            grey = array[..., -1]  # strokes on a transparent layer: opaque = hole
        array = grey
    if array.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(array), mode="L")
    return Image.fromarray(np.ascontiguousarray(array, dtype=np.float32), mode="F")


def fit(image: Image.Image, size: int | tuple[int, int],
        resample: Image.Resampling = Image.Resampling.BICUBIC) -> Image.Image:
    """`image` centre-cropped to the aspect of `size` ((width, height); an int is a square), then resized to it.

    The library's one way to bring a photo or a mask plane to a size: whole pixels are cropped (the
    left/top margin is the smaller one when the margins differ by one), then `resample` scales the crop.
    Nothing is squashed.
    """
    width, height = (size, size) if isinstance(size, int) else size
    w, h = image.size
    crop_w, crop_h = min(w, round(h * width / height)), min(h, round(w * height / width))
    if (crop_w, crop_h) != (w, h):
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
    return image if image.size == (width, height) else image.resize((width, height), resample)
