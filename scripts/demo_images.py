"""Pure image functions of scripts/build_demo_data.py (tested): squares, seeded patches, smooth images,
masks, difference hashes, atomic saving; and the evaluation photos bundled with pip packages.
"""
from __future__ import annotations

import io
import math
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from csa_lib import imageio

def to_pil_rgb(image) -> Image.Image:
    """PIL RGB image from a PIL image or an (H,W[,C]) uint8/float array."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    return Image.fromarray(arr, "RGB")


def center_square(image, size: int = 256) -> Image.Image:
    """Centre-crop to a square (the short side) and resize to ``size`` x ``size`` (Lanczos): ``csa_lib.imageio.fit``."""
    return imageio.fit(to_pil_rgb(image), size, Image.Resampling.LANCZOS)


def stable_seed(*parts) -> int:
    """A seed that does not depend on PYTHONHASHSEED."""
    return zlib.crc32("/".join(str(p) for p in parts).encode("utf-8"))


def random_patches(image, n: int, size: int = 256, seed: int = 0, min_short: int | None = None,
                   max_short: int | None = None, n_scales: int = 4, min_std: float = 3.0,
                   tries: int = 8) -> list[np.ndarray]:
    """``n`` random ``size`` x ``size`` uint8 RGB crops of ``image`` at a few random scales.

    The image is resized so that its short side is ``n_scales`` values drawn uniformly from
    ``[min_short, max_short]`` (default ``size`` .. ``3*size``; never below ``size``), and the
    ``n`` crops are shared out evenly over the scales. A crop whose grey-level standard deviation
    is below ``min_std`` (flat sky, blurred background) is redrawn up to ``tries`` times; the
    most textured candidate is kept. Fully deterministic for a given ``seed``.
    """
    if n <= 0:
        return []
    img = to_pil_rgb(image)
    min_short = size if min_short is None else max(size, min_short)
    max_short = 3 * size if max_short is None else max(min_short, max_short)
    rng = np.random.default_rng(seed)
    n_scales = max(1, min(n_scales, n))
    shorts = np.sort(rng.integers(min_short, max_short + 1, size=n_scales))
    counts = [n // n_scales + (1 if i < n % n_scales else 0) for i in range(n_scales)]
    w, h = img.size
    out: list[np.ndarray] = []
    for short, count in zip(shorts, counts):
        f = float(short) / min(w, h)
        nw, nh = max(size, round(w * f)), max(size, round(h * f))
        arr = np.asarray(img.resize((nw, nh), Image.Resampling.LANCZOS) if (nw, nh) != (w, h) else img)
        grey = arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        for _ in range(count):
            best, best_std = None, -1.0
            for _ in range(max(1, tries)):
                y = int(rng.integers(0, nh - size + 1))
                x = int(rng.integers(0, nw - size + 1))
                std = float(grey[y:y + size, x:x + size].std())
                if std > best_std:
                    best, best_std = (y, x), std
                if std >= min_std:
                    break
            y, x = best
            out.append(np.ascontiguousarray(arr[y:y + size, x:x + size]))
    return out


def smooth_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth synthetic 'sky': a flat colour or a gradient with a little noise -> uint8 (size, size, 3).

    Real photos hold few flat regions, and the random-crop filter avoids them, so a model trained on
    photos alone never learns that the hole of a plain sky or wall is that same colour (earlier demo
    weights painted a tinted square with a dot in it there). A few of these in the training set
    teach it. The colour is uniform in RGB; the gradient runs in a random direction over 0-90
    levels per channel; the noise has a standard deviation of 0-3 levels.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)  # (size, size) each, in [0, 1]
    base = rng.uniform(0, 255, 3)
    if rng.random() < 0.3:
        image = np.broadcast_to(base, (size, size, 3)).copy()
    else:
        angle = rng.uniform(0, 2 * math.pi)
        t = (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle)  # (size, size), in about [-0.7, 0.7]
        image = base + t[..., None] * rng.uniform(-90, 90, 3)
    image = image + rng.normal(0, rng.uniform(0, 3), image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Evaluation photos bundled with pip packages
# --------------------------------------------------------------------------------------------


def load_eval_photo(name: str) -> np.ndarray:
    """The full-size uint8 RGB photo ``name`` (see EVAL_SOURCES) from its pip package."""
    if name in ("astronaut", "chelsea", "coffee", "rocket", "motorcycle"):
        import skimage.data as sd
        arr = sd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(sd, name)()
    elif name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        arr = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        from matplotlib import cbook
        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            arr = np.asarray(im.convert("RGB"))
    else:
        raise KeyError(name)
    return np.asarray(to_pil_rgb(arr))


def eval_image(name: str, size: int = 256) -> Image.Image:
    return center_square(load_eval_photo(name), size)


def dhash(image, size: int = 8) -> int:
    """64-bit difference hash: the signs of horizontal grey-level steps on a (size+1) x size thumbnail."""
    grey = to_pil_rgb(image).convert("L").resize((size + 1, size), Image.Resampling.BILINEAR)
    a = np.asarray(grey, np.int16)
    bits = (a[:, 1:] > a[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def jpeg_roundtrip(image) -> np.ndarray:
    """``image`` as ``save_image(..., "jpg")`` stores it and a reader gets it back (uint8 RGB array)."""
    buf = io.BytesIO()
    to_pil_rgb(image).save(buf, "JPEG", quality=95, subsampling=0)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def save_image(img, path: Path, fmt: str) -> None:
    img = to_pil_rgb(img)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "jpg":
        img.save(tmp, "JPEG", quality=95, subsampling=0)
    else:
        img.save(tmp, "PNG", optimize=True)
    tmp.replace(path)
