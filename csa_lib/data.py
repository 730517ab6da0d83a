"""Image folders, the (image, mask) dataset, seeded DataLoaders, a fixed sample batch.

Every sample is a dict ``{"image": (3,H,W) float32 in [-1, 1], "mask": (1,H,W) float32, 1 = hole}``;
the DataLoader stacks them into ``(B,3,H,W)`` and ``(B,1,H,W)``.

Resizing differs from the original on purpose: it squashed every image with ``Resize((256, 256))``;
here the short side is resized to ``image_size`` and a square is cropped (random crop when training,
centre crop otherwise), so the aspect ratio is kept. Paris StreetView (936 x 537) is the case where
this matters. The procedural scenes of ``data_root = "synthetic"`` are drawn by ``csa_lib.synthetic``.
"""
from __future__ import annotations

import itertools
import random
import signal
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from csa_lib import imageio
from csa_lib.imageio import find_images  # the training image folders' check: the library's one
from csa_lib.masks import MaskSource
from csa_lib.synthetic import SyntheticImages
from csa_lib.utils import from_pil

__all__ = [
    "IMAGE_EXTENSIONS", "ImageFolder", "InpaintingDataset", "build_datasets", "find_images", "make_loader",
    "seed_worker", "split_files",
]

IMAGE_EXTENSIONS: tuple[str, ...] = imageio.IMAGE_EXTENSIONS
"""File endings (case-insensitive) that image folders are searched for: the library's one image list."""

SYNTHETIC_TRAIN_SIZE = 256  # images in the synthetic training set (data_root = "synthetic")
SYNTHETIC_VAL_SIZE = 16     # images in the synthetic validation set

_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)  # what PIL raises on bad files


def split_files(files: Sequence[Any], val_fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Deterministic split by file -> (train_files, val_files), each sorted; at least one of each when possible."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(files, key=str)
    n_val = round(len(ordered) * val_fraction)
    if val_fraction > 0 and len(ordered) >= 2:
        n_val = min(max(n_val, 1), len(ordered) - 1)
    order = np.random.default_rng(seed).permutation(len(ordered))
    val_index = set(order[:n_val].tolist())
    train = [f for i, f in enumerate(ordered) if i not in val_index]
    val = [f for i, f in enumerate(ordered) if i in val_index]
    return train, val


CHANNEL_ORDERS = tuple(itertools.permutations(range(3)))  # (0, 1, 2) first: the identity


class ImageFolder(Dataset):
    """Images under a folder (any nesting) -> (3, image_size, image_size) float32 in [-1, 1].

    Short side resized to ``image_size`` (bilinear, antialiased), then a random (train) or centre
    (eval) square crop and, when ``train and flip``, a random horizontal flip; when training with
    ``channel_shuffle`` p > 0, the R, G, B channels are put in a random order with probability p
    (colour variety when a few photos share one palette). With ``seed=None`` the
    crop and flip draw from torch's global RNG (seeded per worker by the DataLoader); with a seed they
    are a pure function of (seed, epoch, index), the same for any number of workers (see ``set_epoch``).
    Unreadable files are skipped: the first time one is hit it is reported by one warning and the next
    readable file is returned instead.
    """

    def __init__(self, root: str | Path, image_size: int, train: bool = True, flip: bool = True,
                 files: Sequence[str | Path] | None = None, seed: int | None = None,
                 channel_shuffle: float = 0.0) -> None:
        self.root = Path(root)
        self.image_size = image_size
        self.train = train
        self.flip = flip
        self.seed = seed
        self.channel_shuffle = channel_shuffle
        self.epoch = 0
        self.files: list[Path] = find_images(root) if files is None else [Path(f) for f in files]
        self.bad_files: set[Path] = set()

    def set_epoch(self, epoch: int) -> None:
        """Use the crops and flips of ``epoch`` from now on (only matters when ``seed`` is set)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files)

    def load(self, path: Path, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Read (``imageio.read_image``), resize, crop and flip one file -> (3, image_size, image_size) in [-1, 1].

        Unreadable, empty or too large files raise ValueError.

        ``rng`` draws the crop, flip and channel order; None uses torch's global RNG.
        """
        def draw(high: int) -> int:
            """Uniform integer in [0, high)."""
            return int(rng.integers(high)) if rng is not None else int(torch.randint(high, ()))

        def chance(p: float) -> bool:
            """True with probability p."""
            return (float(rng.random()) if rng is not None else float(torch.rand(()))) < p

        pil = Image.fromarray(imageio.read_image(path))  # upright, 8-bit RGB, alpha on white
        pil = TF.resize(pil, self.image_size, antialias=True)  # short side = image_size
        size = self.image_size
        if self.train:
            top, left = draw(pil.height - size + 1), draw(pil.width - size + 1)
            pil = TF.crop(pil, top, left, size, size)
        else:
            pil = TF.center_crop(pil, [size, size])
        if self.train and self.flip and draw(2) == 1:
            pil = TF.horizontal_flip(pil)
        image = from_pil(pil)  # (3, size, size)
        if self.train and self.channel_shuffle > 0 and chance(self.channel_shuffle):
            image = image[list(CHANNEL_ORDERS[1 + draw(len(CHANNEL_ORDERS) - 1)])]  # one of the 5 other orders
        return image

    def __getitem__(self, index: int) -> torch.Tensor:
        """Image ``index`` (or the next readable one) -> (3, image_size, image_size) in [-1, 1]."""
        n = len(self.files)
        for offset in range(n):
            path = self.files[(index + offset) % n]
            if path in self.bad_files:
                continue
            rng = None if self.seed is None else np.random.default_rng([self.seed, self.epoch, index])
            try:
                return self.load(path, rng)
            except _READ_ERRORS as exc:
                self.bad_files.add(path)
                warnings.warn(f"skipping unreadable image '{path}': {exc}", stacklevel=2)
        raise RuntimeError(f"none of the {n} image files in '{self.root}' could be read "
                           f"(first: '{self.files[0] if n else None}')")

    def __repr__(self) -> str:
        mode = "train" if self.train else "eval"
        return f"ImageFolder('{self.root}', {len(self)} images, {self.image_size} px, {mode}, flip={self.flip})"


class InpaintingDataset(Dataset):
    """Pairs images with masks -> ``{"image": (3,H,W), "mask": (1,H,W)}``; the mask depends on (seed, epoch, index).

    Call ``set_epoch(e)`` before each epoch so every epoch sees new masks; it is passed on to the images
    when they have ``set_epoch`` too. Loaders from ``make_loader`` restart their workers every epoch, so
    the workers see the new value.
    """

    def __init__(self, images: Dataset, masks: MaskSource) -> None:
        self.images = images
        self.masks = masks
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the masks (and, for a seeded ImageFolder, the crops and flips) of ``epoch`` from now on."""
        self.epoch = epoch
        if hasattr(self.images, "set_epoch"):
            self.images.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.images)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """Sample ``index`` -> {"image": (3,H,W) in [-1, 1], "mask": (1,H,W), 1 = hole}."""
        image = self.images[index]  # (3, H, W)
        mask = self.masks.sample(index, epoch=self.epoch)  # (1, H, W)
        if image.shape[-2:] != mask.shape[-2:]:
            raise ValueError(f"image {tuple(image.shape)} and mask {tuple(mask.shape)} sizes differ")
        return {"image": image, "mask": mask}

    def __repr__(self) -> str:
        return f"InpaintingDataset({self.images!r}, {self.masks!r}, epoch={self.epoch})"


def build_datasets(cfg: Any) -> tuple[InpaintingDataset, InpaintingDataset]:
    """(train, val) InpaintingDatasets from cfg.data_root ("synthetic" = SyntheticImages 256 / 16), masks from cfg.

    Everything random (crops, flips, masks) is a function of (cfg.seed, epoch, index): call
    ``train_ds.set_epoch(e)`` each epoch.
    """
    size = cfg.image_size
    if cfg.data_root == "synthetic":
        train_images: Dataset = SyntheticImages(SYNTHETIC_TRAIN_SIZE, size, seed=cfg.seed)
        val_images: Dataset = SyntheticImages(SYNTHETIC_VAL_SIZE, size, seed=cfg.seed + 1)
    else:
        train_files, val_files = split_files(find_images(cfg.data_root), cfg.val_fraction, cfg.seed)
        train_images = ImageFolder(cfg.data_root, size, train=True, flip=cfg.flip, files=train_files,
                                   seed=cfg.seed, channel_shuffle=cfg.channel_shuffle)
        val_images = ImageFolder(cfg.data_root, size, train=False, flip=False, files=val_files)
    train_masks = MaskSource(cfg.mask_type, size, cfg.mask_root, seed=cfg.seed)
    val_masks = MaskSource(cfg.mask_type, size, cfg.mask_root, seed=cfg.seed + 1)
    return InpaintingDataset(train_images, train_masks), InpaintingDataset(val_images, val_masks)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: seed NumPy and `random` from the worker's torch seed; ignore SIGINT/SIGTERM."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
    # Ctrl-C reaches the whole process group: the main process saves and stops, and ends its workers
    # itself, so a worker must not die first (the main process would then fail fetching a batch).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def make_loader(ds: Dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int,
                sampler: Sampler | None = None) -> DataLoader:
    """DataLoader with a seeded generator and seeded workers (same seed -> same batches); batches of dicts."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=generator,
        pin_memory=torch.cuda.is_available(),
    )


def fixed_sample_batch(train_ds: Dataset, val_ds: Dataset | None, rows: int, epoch: int) -> dict[str, torch.Tensor]:
    """The first `rows` items of `val_ds` at epoch 0 (of `train_ds` if there is no validation set) as one batch.

    Returns {"image": (rows,3,H,W), "mask": (rows,1,H,W)}. Leaves the global torch RNG where it was (datasets
    with random crops draw from it) and the training set at `epoch`, so training continues unchanged.
    """
    ds = val_ds if val_ds is not None and len(val_ds) > 0 else train_ds
    if hasattr(ds, "set_epoch") and ds is val_ds:
        ds.set_epoch(0)
    with torch.random.fork_rng(devices=[]):
        items = [ds[i] for i in range(min(rows, len(ds)))]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("image", "mask")}
    if ds is train_ds and hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)
    return batch
