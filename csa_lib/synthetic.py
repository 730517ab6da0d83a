"""Procedural images: the synthetic training set (sky, horizon, textured ground, shapes) and smooth scenes.

`SyntheticImages` is what ``data_root = "synthetic"`` trains on (no download, the same scenes on every
machine); `save_synthetic_folder` writes them as PNGs. `smooth_scenes` are the flat colours and skies
the demo model's plain-fill checks (tests and benchmarks) fill.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from csa_lib.utils import to_pil

__all__ = ["SMOOTH_SCENES", "SyntheticImages", "save_synthetic_folder", "smooth_scene", "smooth_scenes",
           "synthetic_image"]


def _blend(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel mix of colours a, b (3,) by weight t (H, W) -> (H, W, 3)."""
    return a * (1.0 - t[..., None]) + b * t[..., None]


def _texture(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """A random stripe or checker pattern in [-1, 1] -> (H, W); coordinates in [0, 1]."""
    period = rng.uniform(0.04, 0.15)
    if rng.random() < 0.5:
        angle = rng.uniform(0.0, math.pi)
        phase = (xx * math.cos(angle) + yy * math.sin(angle)) / period
        return np.sign(np.sin(2 * math.pi * phase))  # stripes
    return np.where((np.floor(xx / period) + np.floor(yy / period)) % 2 == 0, 1.0, -1.0)  # checker


def synthetic_image(image_size: int, rng: np.random.Generator) -> torch.Tensor:
    """One procedural scene (sky, tilted horizon, textured ground, sun, boxes, ellipses) -> (3,H,W) in [-1, 1]."""
    coords = (np.arange(image_size, dtype=np.float64) + 0.5) / image_size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")  # (H, W) each, in [0, 1]
    horizon = rng.uniform(0.35, 0.65) + rng.uniform(-0.15, 0.15) * (xx - 0.5)  # (H, W)
    sky_top, sky_low = rng.uniform([0.1, 0.2, 0.5], [0.4, 0.6, 1.0]), rng.uniform(0.6, 1.0, 3)
    sky = _blend(sky_top, sky_low, np.clip(yy / horizon, 0.0, 1.0))  # (H, W, 3)
    ground_near, ground_far = rng.uniform(0.0, 0.6, 3), rng.uniform(0.2, 0.8, 3)
    ground = _blend(ground_far, ground_near, np.clip((yy - horizon) / (1 - horizon), 0.0, 1.0))
    ground = ground * (1.0 + rng.uniform(0.1, 0.25) * _texture(rng, yy, xx))[..., None]
    image = np.where((yy < horizon)[..., None], sky, ground)  # (H, W, 3)
    if rng.random() < 0.5:  # sun or moon
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3), rng.uniform(0.04, 0.1)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r  # (H, W)
        image[disc] = rng.uniform(0.8, 1.0, 3)
    for _ in range(int(rng.integers(1, 5))):
        colour = rng.uniform(0.0, 1.0, 3)
        cx, cy = rng.uniform(0.1, 0.9), rng.uniform(0.2, 0.9)
        hw, hh = rng.uniform(0.05, 0.2, 2)
        if rng.random() < 0.5:
            inside = (np.abs(xx - cx) < hw) & (np.abs(yy - cy) < hh)  # box
        else:
            inside = ((xx - cx) / hw) ** 2 + ((yy - cy) / hh) ** 2 < 1.0  # ellipse
        fill = np.broadcast_to(colour, image.shape)  # (H, W, 3)
        if rng.random() < 0.4:
            fill = fill * (1.0 + 0.3 * _texture(rng, yy, xx))[..., None]
        image[inside] = fill[inside]
    image = np.clip(image, 0.0, 1.0).astype(np.float32) * 2.0 - 1.0  # (H, W, 3) in [-1, 1]
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))  # (3, H, W)


class SyntheticImages(Dataset):
    """``n`` procedural scenes, image ``i`` drawn from seed ``(seed, i)`` -> (3, image_size, image_size) in [-1, 1]."""

    def __init__(self, n: int, image_size: int, seed: int = 0) -> None:
        if n < 1:
            raise ValueError(f"SyntheticImages needs n >= 1, got {n}")
        self.n = n
        self.image_size = image_size
        self.seed = seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> torch.Tensor:
        """Scene ``index`` -> (3, image_size, image_size) in [-1, 1], the same on every call."""
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} synthetic images")
        return synthetic_image(self.image_size, np.random.default_rng([self.seed, index % self.n]))

    def __repr__(self) -> str:
        return f"SyntheticImages({self.n}, {self.image_size} px, seed={self.seed})"


SMOOTH_SCENES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "blue": ((70, 130, 200), (70, 130, 200)),
    "grey": ((128, 128, 128), (128, 128, 128)),
    "sand": ((200, 180, 140), (200, 180, 140)),
    "dark green": ((40, 70, 40), (40, 70, 40)),
    "sky": ((40, 90, 190), (170, 200, 235)),
    "dusk": ((30, 30, 80), (230, 140, 90)),
}
"""Plain photos a model must fill with their own colour (no tint, dot or border): name -> (top, bottom) RGB."""


def smooth_scene(top: Sequence[int], bottom: Sequence[int], size: int = 256) -> np.ndarray:
    """A flat colour (``top == bottom``) or a vertical gradient from `top` to `bottom` -> uint8 (size, size, 3)."""
    if tuple(top) == tuple(bottom):
        return np.tile(np.array(top, np.uint8), (size, size, 1))  # (size, size, 3)
    t = np.linspace(0.0, 1.0, size)[:, None, None]  # (size, 1, 1) top to bottom
    return np.repeat(np.array(top) * (1 - t) + np.array(bottom) * t, size, axis=1).round().astype(np.uint8)


def smooth_scenes(size: int = 256) -> dict[str, np.ndarray]:
    """Every SMOOTH_SCENES entry as a uint8 (size, size, 3) image (the demo model's plain-fill checks)."""
    return {name: smooth_scene(top, bottom, size) for name, (top, bottom) in SMOOTH_SCENES.items()}


def save_synthetic_folder(path: str | Path, n: int, image_size: int, seed: int = 0) -> list[Path]:
    """Write SyntheticImages(n, image_size, seed) as ``synthetic_0000.png``... into ``path`` -> the file paths."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    images = SyntheticImages(n, image_size, seed)
    paths = []
    for index in range(n):
        file = folder / f"synthetic_{index:04d}.png"
        to_pil(images[index]).save(file)
        paths.append(file)
    return paths
