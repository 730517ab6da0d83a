"""A training checkpoint and the trainer's objects: packing them into the dict, loading it back, resuming, saving.

The functions pack and unpack the dict; `TrainerCheckpoints` is the half of `csa_lib.train.Trainer`
that uses them (`state_dict`, `load_state_dict`, the resume done by its constructor, `save`), so a
checkpoint's way in and out of a run is read in this one file. `copy_generator_weights` starts a
run's generator from another checkpoint (`--init-generator`).

Resuming is exact: the data order is a pure function of (seed, epoch) (`data_order.ResumableSampler`),
the datasets draw masks and flips from (seed, epoch, index), and a checkpoint stores the position
inside the epoch, so a resumed run skips the batches it has already seen and then sees the same
batches, masks, learning rates and optimiser states as an uninterrupted run.

The dict (docs/INTERFACES.md): `format`, `config`, `step`, `epoch`, one state dict per network
(`generator`, `patch_disc`, `feature_disc`), `optimizers`, `schedulers`, `scalers` (AMP; older
checkpoints lack it), `rng` (the generator states plus `data`, the data-order position of
`data_position`), `history` and `log_state` (the log steps not yet averaged into a row).
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from . import checkpoint as ckpt
from ..config import Config
from ..model import CSAGenerator
from .data_order import rng_state, set_rng_state
from .distributed import barrier
from .divergence import diverged, non_finite_weights

NETS = ("generator", "patch_disc", "feature_disc")
OPTIM_GROUPS = ("optimizers", "schedulers", "scalers")  # each {name: object with state_dict / load_state_dict}
MODEL_SETTINGS = ("image_size", "unet_levels", "ngf", "ndf")  # a checkpoint only loads into a model of the same shape


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


ResumePoint = tuple[Path, dict[str, Any]]  # (path, state) of a checkpoint already read


def find_checkpoint(resume: bool | str | os.PathLike | ResumePoint, out_dir: str | os.PathLike,
                    map_location: Any = "cpu") -> ResumePoint | None:
    """(path, state) to resume from: `resume=True` takes the newest valid checkpoint in `out_dir` (None if there
    is none), a path that file (an error if it does not load), a (path, state) pair is returned as it is
    (the command line has read it already, for its config)."""
    if isinstance(resume, tuple):
        return resume
    if resume is True:
        return ckpt.load_latest(out_dir, map_location=map_location)
    path = Path(resume)
    return path, ckpt.load_checkpoint(path, map_location=map_location)


def copy_generator_weights(generator: CSAGenerator, path: str | os.PathLike) -> None:
    """Load into `generator` the weights at `path` (anything `load_model` reads); ValueError if the sizes differ."""
    # Here, not at the top: only --init-generator needs the inference loader, and importing it loads the
    # Poisson blend and the official layout, which training otherwise never uses.
    from ..inference import load_model

    source = load_model(path, device="cpu")
    if (source.ngf, source.depth) != (generator.ngf, generator.depth):
        raise ValueError(f"init_generator {path} is a model with ngf={source.ngf} and {source.depth} U-Net levels "
                         f"(image_size={source.image_size}); this run has ngf={generator.ngf} and {generator.depth} "
                         f"levels: set --ngf {source.ngf} and --image-size {2 ** source.depth}, or keep the image size "
                         f"and add --unet-depth {source.depth}")
    generator.load_state_dict(source.state_dict())


class TrainerCheckpoints:
    """The checkpoint half of `csa_lib.train.Trainer`: its state as a checkpoint dict and back, resume, save.

    Reads the trainer's networks (`generator`, `patch_disc`, `feature_disc`), `optimizers`, `schedulers`,
    `scalers`, counters (`step`, `epoch`, `batch_in_epoch`), `log` (a RunLog), `_lock` (a RunLock),
    `cfg`, `out_dir`, `device`, `world_size` and `is_main`, all set by `Trainer.__init__`.
    """

    def _stateful(self) -> tuple[dict[str, nn.Module], dict[str, dict[str, Any]]]:
        """(networks, optimisation objects) as pack_state / unpack_state take them."""
        nets = {"generator": self.generator, "patch_disc": self.patch_disc, "feature_disc": self.feature_disc}
        return nets, {"optimizers": self.optimizers, "schedulers": self.schedulers, "scalers": self.scalers}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint dict (docs/INTERFACES.md, `pack_state`), with `scalers` (AMP) and `log_state`."""
        rng = rng_state()
        rng["data"] = data_position(self.cfg, self.epoch, self.batch_in_epoch, self.world_size)
        return pack_state(self.cfg, self.step, self.epoch, *self._stateful(), rng, self.history, self.log.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore weights, optimisers, schedulers, scalers, counters, RNG and history from a checkpoint dict."""
        data = state["rng"].get("data", {})
        check_resume_settings(Config.from_dict(state["config"]), data, self.cfg, self.world_size)
        unpack_state(state, *self._stateful())
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(data.get("batch_in_epoch", 0))
        self.log.load_state_dict(state.get("log_state", {}), state.get("history", []))
        set_rng_state(state["rng"])
        self._last_saved_step = self.step

    def _resume(self, resume: bool | str | os.PathLike | ResumePoint) -> None:
        found = find_checkpoint(resume, self.out_dir, map_location=self.device)
        if found is None:
            if self.is_main:
                print(f"resume: no checkpoint in {self.out_dir}, starting from scratch", file=sys.stderr)
            return
        path, state = found
        self.load_state_dict(state)
        self.resumed_from = path
        self._truncate_log_at = self.step  # done by fit(), once it holds the run folder's lock
        if self.is_main:
            print(f"resumed from {path} at step {self.step} (epoch {self.epoch}, "
                  f"batch {self.batch_in_epoch})", file=sys.stderr)

    def _open_run_folder(self) -> None:
        """Rank 0, at the start of fit(): take the run folder's lock, remove what a crashed save left, drop the
        log rows written after the resumed checkpoint, open TensorBoard."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()  # before anything is written: a second trainer on this folder stops here
        for stale in ckpt.remove_stale_temp_files(self.out_dir):
            print(f"removed {stale}, left by an interrupted save", file=sys.stderr)
        if self._truncate_log_at is not None:
            self.log.truncate(self._truncate_log_at)
            self._truncate_log_at = None
        self.log.open_tensorboard(self.step)

    def _last_checkpoint(self) -> Path | None:
        last = self.out_dir / ckpt.LAST_NAME
        return last if self._last_saved_step >= 0 and last.is_file() else None

    def save(self) -> Path | None:
        """Write `step_<step>.pt` and `last.pt` (rank 0), prune old ones; all ranks wait for it.

        TrainingDiverged (nothing written) after fit() stopped on a diverged loss or when a network holds
        NaN or infinite weights.
        """
        if self.diverged is not None:
            raise self.diverged
        bad = non_finite_weights(self._stateful()[0])  # every rank: their weights are the same
        if bad:
            raise diverged(self.step, f"{', '.join(bad)} hold NaN or infinite weights", self.cfg.lr,
                           self._last_checkpoint())
        path = None
        barrier()
        if self.is_main:
            held = self._lock.held
            self._lock.acquire()  # a save outside fit() takes the lock for its own duration
            try:
                path = ckpt.save_training_checkpoint(self.out_dir, self.state_dict(), self.cfg.keep_checkpoints)
            finally:
                if not held:
                    self._lock.release()
        barrier()
        self._last_saved_step, self._last_save_time = self.step, time.monotonic()
        return path
