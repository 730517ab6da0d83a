"""Small shared helpers: seeding, tensor <-> PIL conversion of [-1, 1] images, a notebook's run folder,
frozen parameters, Ctrl-C / SIGTERM as a request to stop."""
from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import nn


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


RUN_MARKER = ".created_by"
RUN_OUTPUTS = ("step_*.pt", "last.pt", "log.csv", "samples/step_*.png", "tb/events.out.tfevents.*", RUN_MARKER)


def fresh_run_dir(path: str | os.PathLike, owner: str) -> Path:
    """An empty run folder for `owner` (e.g. "train.ipynb"); removes only what an earlier run of `owner` wrote there.

    A missing or empty folder is created and marked with a `.created_by` file naming `owner`. A folder
    with that mark loses the trainer's outputs (RUN_OUTPUTS) and keeps anything else. Any other
    non-empty folder is left alone: FileExistsError, naming it.
    """
    folder = Path(path)
    marker = folder / RUN_MARKER
    if folder.is_dir() and any(folder.iterdir()):
        if not marker.is_file() or marker.read_text().strip() != owner:
            raise FileExistsError(f"{folder} holds files that {owner} did not write: choose another folder, "
                                  f"or empty it yourself (nothing was deleted)")
        for pattern in RUN_OUTPUTS:
            for found in folder.glob(pattern):
                if found.is_file():
                    found.unlink()
        for sub in ("samples", "tb"):
            if (folder / sub).is_dir() and not any((folder / sub).iterdir()):
                (folder / sub).rmdir()
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(owner + "\n")
    return folder


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """requires_grad off for every parameter of `modules` inside the block; each parameter's own flag is back after it."""
    flags = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def catch_stop_signals(on_stop: Callable[[str], None]) -> Callable[[], None]:
    """Until the returned function is called, SIGINT (Ctrl-C) and SIGTERM call `on_stop("SIGINT" / "SIGTERM")`.

    The first signal also puts the previous handlers back, so a second one has its usual effect (Ctrl-C
    then interrupts at once). Only the main thread can set handlers; elsewhere signals keep their usual
    effect.
    """
    previous: dict[int, Any] = {}

    def restore() -> None:
        while previous:
            signal.signal(*previous.popitem())

    def stop(signum: int, frame: Any) -> None:
        on_stop(signal.Signals(signum).name)
        restore()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    return restore
