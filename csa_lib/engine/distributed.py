"""Distributed training helpers: the torchrun environment and process group, a device per rank, barriers,
agreed flags and averaged losses, DDP wrapping.

Without torchrun (WORLD_SIZE unset or 1) `dist_env` says (0, 0, 1), `barrier` does nothing and the
trainer neither calls `any_rank` nor `wrap_ddp`.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


def dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the torchrun environment; (0, 0, 1) when not distributed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def join_process_group(device: torch.device) -> bool:
    """Start the torchrun process group (NCCL for CUDA, else Gloo) unless one is up; True when this call started it."""
    if dist.is_initialized():
        return False
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def leave_process_group() -> None:
    """Destroy the process group, if one is up."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def main_rank_first(distributed: bool, is_main: bool) -> Iterator[None]:
    """Rank 0 runs the block first (fetching, caching files), every other rank after it has; no waiting when alone."""
    if distributed and not is_main:
        barrier()
    yield
    if distributed and is_main:
        barrier()


def pick_device(device: str | torch.device | None, distributed: bool, local_rank: int) -> torch.device:
    """`device`, else CUDA when available (the rank's local GPU under torchrun), else the CPU; selects a CUDA device."""
    if device is not None:
        dev = torch.device(device)
    elif torch.cuda.is_available():
        dev = torch.device("cuda", local_rank if distributed else torch.cuda.current_device())
    else:
        dev = torch.device("cpu")
    if dev.type == "cuda":
        if distributed and dev.index is None:
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


def any_rank(flags: tuple[bool, ...], device: torch.device) -> list[bool]:
    """Each flag true on any rank (one all-reduce over the process group), so that every rank acts together."""
    values = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return (values > 0).tolist()


def mean_over_ranks(values: Tensor, world_size: int) -> Tensor:
    """`values` averaged over the ranks, in place (one all-reduce over the process group)."""
    dist.all_reduce(values)
    values /= world_size
    return values


def wrap_ddp(module: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """DistributedDataParallel around `module` on `device` (no buffer broadcast: the nets keep no running stats)."""
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False,
                                   find_unused_parameters=find_unused_parameters)
