"""Small shared helpers: seeding and tensor <-> PIL conversion of [-1, 1] images."""
from __future__ import annotations

import random

import numpy as np
import torch
from PIL import Image


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def to_pil(image: torch.Tensor) -> Image.Image:
    """Image in [-1, 1], (3,H,W) / (1,3,H,W) -> RGB PIL image, or (H,W) / (1,H,W) -> greyscale ("L")."""
    array = image.detach().to("cpu", torch.float32)
    if array.dim() == 4:
        if array.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of shape {tuple(array.shape)}")
        array = array[0]  # (C, H, W)
    if array.dim() == 3 and array.shape[0] == 1:
        array = array[0]  # (H, W)
    if array.dim() == 3 and array.shape[0] != 3:
        raise ValueError(f"to_pil expects 1 or 3 channels, got shape {tuple(image.shape)}")
    pixels = ((array.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)  # (3, H, W) or (H, W)
    if pixels.dim() == 3:
        return Image.fromarray(pixels.permute(1, 2, 0).numpy())  # (H, W, 3) uint8 -> RGB
    return Image.fromarray(pixels.numpy())  # (H, W) uint8 -> L


def from_pil(pil: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> float32 tensor (3,H,W) in [-1, 1], converted to RGB first."""
    array = np.asarray(pil.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)  # (3, H, W) uint8
    return tensor.to(torch.float32) / 127.5 - 1.0  # (3, H, W) in [-1, 1]
