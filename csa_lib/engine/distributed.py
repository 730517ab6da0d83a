"""Distributed training helpers: the torchrun environment, a device per rank, barriers, agreed flags, DDP wrapping.

Without torchrun (WORLD_SIZE unset or 1) `dist_env` says (0, 0, 1), `barrier` does nothing and the
trainer neither calls `any_rank` nor `wrap_ddp`.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the torchrun environment; (0, 0, 1) when not distributed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def barrier() -> None:
    """Wait for every rank (a no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


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


def wrap_ddp(module: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """DistributedDataParallel around `module` on `device` (no buffer broadcast: the nets keep no running stats)."""
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False,
                                   find_unused_parameters=find_unused_parameters)
