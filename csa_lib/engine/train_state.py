"""A training checkpoint and the trainer's objects: packing them into the dict, loading it back, checking a resume.

The dict (docs/INTERFACES.md): `format`, `config`, `step`, `epoch`, one state dict per network
(`generator`, `patch_disc`, `feature_disc`), `optimizers`, `schedulers`, `scalers` (AMP; older
checkpoints lack it), `rng` (the generator states plus `data`, the data-order position of
`data_position`), `history` and `log_state` (the log steps not yet averaged into a row).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from . import checkpoint as ckpt
from ..config import Config

NETS = ("generator", "patch_disc", "feature_disc")
OPTIM_GROUPS = ("optimizers", "schedulers", "scalers")  # each {name: object with state_dict / load_state_dict}
MODEL_SETTINGS = ("image_size", "ngf", "ndf")  # a checkpoint only loads into a model of the same shape


def data_position(cfg: Config, epoch: int, batch_in_epoch: int, world_size: int) -> dict[str, int]:
    """`rng["data"]` of a checkpoint: where the data order stood and the settings it depends on."""
    return {"seed": cfg.seed, "epoch": epoch, "batch_in_epoch": batch_in_epoch, "world_size": world_size,
            "batch_size": cfg.batch_size}


def pack_state(cfg: Config, step: int, epoch: int, nets: Mapping[str, nn.Module],
               groups: Mapping[str, Mapping[str, Any]], rng: dict[str, Any], history: list[dict[str, float]],
               log_state: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint dict; `nets` has every name in NETS, `groups` every name in OPTIM_GROUPS."""
    return {
        "format": ckpt.FORMAT,
        "config": cfg.to_dict(),
        "step": step,
        "epoch": epoch,
        **{name: nets[name].state_dict() for name in NETS},
        **{group: {k: o.state_dict() for k, o in groups[group].items()} for group in OPTIM_GROUPS},
        "rng": rng,
        "history": list(history),
        "log_state": log_state,
    }


def unpack_state(state: dict[str, Any], nets: Mapping[str, nn.Module], groups: Mapping[str, Mapping[str, Any]]) -> None:
    """Load the networks, optimisers, schedulers and (those the checkpoint has) AMP scalers of `state` in place."""
    for name in NETS:
        nets[name].load_state_dict(state[name])
    for k, o in groups["optimizers"].items():
        o.load_state_dict(state["optimizers"][k])
    for k, s in groups["schedulers"].items():
        s.load_state_dict(state["schedulers"][k])
    scalers = state.get("scalers", {})
    for k, s in groups["scalers"].items():
        if k in scalers:
            s.load_state_dict(scalers[k])


def check_resume_settings(saved: Config, data: dict[str, int], cfg: Config, world_size: int) -> None:
    """ValueError if the checkpoint's model shape differs from `cfg`; RuntimeWarning if its data order will not continue.

    Args:
        saved: the checkpoint's Config; data: its `rng["data"]` (`data_position`, may be empty);
        cfg, world_size: the run that is resuming.
    """
    for name in MODEL_SETTINGS:
        if getattr(saved, name) != getattr(cfg, name):
            raise ValueError(f"checkpoint has {name}={getattr(saved, name)} but the config says "
                             f"{getattr(cfg, name)}; resume with the checkpoint's model settings")
    for name, now in (("batch_size", cfg.batch_size), ("world_size", world_size), ("seed", cfg.seed)):
        if name in data and data[name] != now:
            warnings.warn(f"resuming with {name}={now} (checkpoint: {data[name]}): the data order will not "
                          f"continue exactly", RuntimeWarning, stacklevel=3)  # points at load_state_dict's caller


def find_checkpoint(resume: bool | str | os.PathLike, out_dir: str | os.PathLike,
                    map_location: Any = "cpu") -> tuple[Path, dict[str, Any]] | None:
    """(path, state) to resume from: `resume=True` takes the newest valid checkpoint in `out_dir` (None if there
    is none), a path that file (an error if it does not load)."""
    if resume is True:
        return ckpt.load_latest(out_dir, map_location=map_location)
    path = Path(resume)
    return path, ckpt.load_checkpoint(path, map_location=map_location)
