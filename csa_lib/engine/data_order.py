"""The data order and random state of a training run, both restorable, so that a resumed run is exact.

`ResumableSampler` gives one epoch's indices from (seed, epoch) alone and skips the ones a checkpoint
says were already seen; `resumable_loader` and `start_epoch` put it in a DataLoader whose worker
seeds depend on (seed, epoch) only; `rng_state` / `set_rng_state` carry the Python, NumPy and torch
generators through a `weights_only` checkpoint.
"""
from __future__ import annotations

import math
import random
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data import make_loader


class ResumableSampler(Sampler[int]):
    """Dataset indices for one epoch: a pure function of (seed, epoch), split across ranks, minus a skipped prefix.

    Shuffled with `torch.randperm` seeded by seed + epoch; padded (by repeating the start) to a multiple of
    the world size and strided by rank, like DistributedSampler. `set_epoch(epoch, skip)` drops the first
    `skip` indices of this rank's share, which is how a resumed run skips the batches it has already seen.
    """

    def __init__(self, length: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if length < 1:
            raise ValueError("the training set is empty")
        self.length, self.seed, self.shuffle = length, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.num_samples = math.ceil(length / world_size)  # per rank
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's permutation and how many of this rank's first indices to skip."""
        self.epoch, self.skip = epoch, skip

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's full index list for `epoch` (before skipping)."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + epoch)
            order = torch.randperm(self.length, generator=g).tolist()
        else:
            order = list(range(self.length))
        total = self.num_samples * self.world_size
        while len(order) < total:  # pad by repeating, so every rank gets the same number of samples
            order += order[: total - len(order)]
        return order[self.rank:total:self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices(self.epoch)[self.skip:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def resumable_loader(ds: Dataset, batch_size: int, num_workers: int, seed: int, rank: int = 0,
                     world_size: int = 1) -> tuple[ResumableSampler, DataLoader]:
    """A shuffling ResumableSampler over `ds` (this rank's share) and a seeded DataLoader drawing from it, at epoch 0."""
    sampler = ResumableSampler(len(ds), seed, shuffle=True, rank=rank, world_size=world_size)
    loader = make_loader(ds, batch_size, shuffle=False, num_workers=num_workers, seed=seed, sampler=sampler)
    if getattr(loader, "generator", None) is None:
        loader.generator = torch.Generator()  # keeps the loader off the global torch RNG
    sampler.set_epoch(0, 0)
    return sampler, loader


def start_epoch(sampler: ResumableSampler, loader: DataLoader, ds: Dataset, seed: int, epoch: int,
                skip: int = 0) -> None:
    """Point the sampler, the dataset's masks (`ds.set_epoch`, if any) and the worker seeds at `epoch`, minus `skip` indices."""
    sampler.set_epoch(epoch, skip)
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)  # masks of this epoch
    # worker seeds: a pure function of (seed, epoch), not of how many epochs this process has run
    loader.generator.manual_seed(seed * 100_003 + epoch)


# --------------------------------------------------------------------------------------------
# RNG state (python, numpy, torch) as a weights_only-safe dict
# --------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA, if initialised) generator states."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned (CUDA states only when the device count matches)."""
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
