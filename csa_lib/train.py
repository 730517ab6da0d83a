"""Training: a minGPT-style `Trainer` (train_step -> dict, fit, callbacks), resumable checkpoints, DDP.

One optimisation step follows the original `optimize_parameters` (`docs/csa_spec.md` §5):
forward; zero D and F, backward `discriminator_losses(...)["total"]`, step D and F; zero G and P,
backward `generator_losses(...)["total"]`, step G and P. Four Adam optimisers, one LambdaLR each,
stepped once per epoch (spec §7).

A non-finite or exploding loss (`engine.divergence.LossGuard`) stops fit() with a one-line
`TrainingDiverged` naming --lr, before that step's weights can be saved.

Distributed: launched by `torchrun` (WORLD_SIZE > 1) the trainer joins a process group (NCCL on CUDA,
gloo on CPU), wraps the three networks in DistributedDataParallel and splits every epoch between the
ranks. Only rank 0 writes checkpoints, logs (`engine.run_log.RunLog`) and samples.

Here: the loop, one step and the callbacks. The checkpoint half (state_dict, load_state_dict, resume,
save; resuming is exact) is `engine.train_state.TrainerCheckpoints`; the command line is `csa_lib/cli/train.py`
(`python -m csa_lib.cli.train --data-root DIR [--any-config-field ...] [--resume]`, also `csa-train`).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .config import Config
from .data import build_datasets, fixed_sample_batch
from .engine import checkpoint as ckpt
from .engine.data_order import resumable_loader, start_epoch
from .engine.distributed import (any_rank, dist_env, join_process_group, leave_process_group, main_rank_first,
                                 mean_over_ranks, pick_device, wrap_ddp)
from .engine.divergence import LossGuard, TrainingDiverged, diverged
from .engine.run_lock import RunLock
from .engine.run_log import RunLog
from .engine.train_state import ResumePoint, TrainerCheckpoints, copy_generator_weights
from .losses import LossNetworks, discriminator_losses, generator_losses
from .model import build_models
from .notebook.viz import save_generator_samples  # the PNG strips of fixed samples a run saves
from .utils import catch_stop_signals, frozen, seed_everything
from .vgg import VGG16Features

OPTIMIZER_NAMES = ("refine_net", "coarse_net", "patch_disc", "feature_disc")  # G, P, D, F of the original


def lr_factor(epoch: int, niter: int, niter_decay: int, epoch_count: int = 1) -> float:
    """LR multiplier after `epoch` completed epochs: 1 - max(0, e + 1 + epoch_count - niter) / (niter_decay + 1).

    1.0 for the first niter - 1 epochs, then a linear decay that reaches 0 after niter + niter_decay - 1
    epochs (the original's formula, spec §7); clamped at 0 if training runs longer than the schedule.
    """
    return max(0.0, 1.0 - max(0, epoch + 1 + epoch_count - niter) / float(niter_decay + 1))


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------
class Trainer(TrainerCheckpoints):
    """Trains generator + both discriminators: `train_step(batch) -> dict`, `fit()`, exact `resume`, `save()`.

    Args:
        cfg: the Config (saved inside every checkpoint).
        callbacks: objects with any of `on_step_end(trainer, logs)`, `on_epoch_end(trainer)`,
            `on_fit_end(trainer)`; a plain callable is taken as `on_step_end`.
        device: defaults to CUDA when available (each rank's local GPU under torchrun).
        resume: True = continue from the newest valid checkpoint in `cfg.checkpoints_dir` (fresh start
            if there is none), the path of a checkpoint file, or a (path, state) pair already read.
        datasets: (train_ds, val_ds) to use instead of `csa_lib.data.build_datasets(cfg)`.
    """

    def __init__(self, cfg: Config, callbacks: Iterable[Any] = (), *, device: str | torch.device | None = None,
                 resume: bool | str | os.PathLike | ResumePoint = False, datasets: tuple[Any, Any] | None = None):
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.rank, self.local_rank, self.world_size = dist_env()
        self.distributed = self.world_size > 1
        self.device = pick_device(device, self.distributed, self.local_rank)
        self._owns_group = self.distributed and join_process_group(self.device)
        self.is_main = self.rank == 0
        self.out_dir = Path(cfg.checkpoints_dir)
        self.amp = bool(cfg.amp) and self.device.type == "cuda"

        seed_everything(cfg.seed)  # same initial weights on every rank
        self.generator, self.patch_disc, self.feature_disc = (m.to(self.device) for m in build_models(cfg))
        if cfg.init_generator:
            copy_generator_weights(self.generator, cfg.init_generator)  # a resumed run then loads its own
        self.vgg = self._build_vgg()
        params = {"refine_net": self.generator.refine_net.parameters(),
                  "coarse_net": self.generator.coarse_net.parameters(),
                  "patch_disc": self.patch_disc.parameters(), "feature_disc": self.feature_disc.parameters()}
        self.optimizers = {k: torch.optim.Adam(p, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)) for k, p in params.items()}
        schedule = self._lr_lambda
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, schedule) for k, o in self.optimizers.items()}
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=self.amp) for k in ("disc", "gen")}

        self.step = 0              # optimisation steps done
        self.epoch = 0             # completed epochs
        self.batch_in_epoch = 0    # steps done inside the current epoch
        self.log = RunLog(self.out_dir, cfg.log_every, write=self.is_main)  # losses averaged every log_every steps
        self.resumed_from: Path | None = None
        self._datasets = datasets
        self.train_ds = self.val_ds = self.sampler = self.loader = None
        self._sample_batch: dict[str, Tensor] | None = None
        self._last_saved_step = -1
        self._last_save_time = time.monotonic()
        self.stopped_by: str | None = None  # "SIGINT" / "SIGTERM" when a signal ended fit() early
        self._lock = RunLock(self.out_dir)  # taken by fit() and save(): one writer per run folder
        self._truncate_log_at: int | None = None
        self.loss_guard: LossGuard | None = LossGuard()  # fit() stops when a loss explodes (None: never)
        self.diverged: TrainingDiverged | None = None  # set when it did: save() then refuses these weights

        if resume:
            self._resume(resume)
        self._wrap_ddp()

    # ---- construction helpers -------------------------------------------------------------
    def _build_vgg(self) -> nn.Module | None:
        if not self.cfg.use_vgg:
            return None  # VGG-free training: consistency and feature-adversarial terms are off
        with main_rank_first(self.distributed, self.is_main):  # rank 0 fetches / caches the weights
            return VGG16Features(self.cfg.vgg_weights).to(self.device)  # frozen: requires_grad off, always eval

    def _lr_lambda(self, epoch: int) -> float:
        return lr_factor(epoch, self.cfg.niter, self.cfg.niter_decay)

    def _wrap_ddp(self) -> None:
        nets = self.generator, self.patch_disc, self.feature_disc
        if self.distributed:  # the coarse net is reached only through its own L1 term when its output is detached
            unused = self.cfg.lambda_l1 == 0 and self.cfg.detach_coarse
            nets = tuple(wrap_ddp(n, self.device, find_unused_parameters=unused and n is nets[0]) for n in nets)
        self.ddp_generator, self.ddp_patch_disc, self.ddp_feature_disc = nets

    # ---- one optimisation step ----------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        """One iteration on a batch {"image": (B,3,H,W), "mask": (B,1,H,W)}: D+F step, then G+P step; returns floats."""
        image = batch["image"].to(self.device, non_blocking=True)  # (B,3,H,W)
        mask = batch["mask"].to(self.device, non_blocking=True)  # (B,1,H,W)
        batch = {"image": image, "mask": mask}
        opt = self.optimizers
        for net in (self.generator, self.patch_disc, self.feature_disc):
            net.train()
        with self._autocast():
            out = self.ddp_generator(image, mask)
            with torch.no_grad():  # pool3, relu4_3 of the truth, shared by both steps
                real_features = self.vgg(image) if self.vgg is not None else None
            # VGG of the output, once, with its graph: the discriminator step reads it detached, the
            # generator step backpropagates through it (VGG is frozen, so both see the same values).
            fake_features = self.vgg(out.refined, upto="pool3") if self.vgg is not None else None

        # Discriminators: zero, backward the total, step both (the DDP wrappers average the gradients).
        for k in ("patch_disc", "feature_disc"):
            opt[k].zero_grad(set_to_none=True)
        with self._autocast():
            d_nets = LossNetworks(self.ddp_patch_disc, self.ddp_feature_disc, self.vgg)
            d_losses = discriminator_losses(batch, out, d_nets, real_features, fake_features)
        self._backward_and_step(d_losses["total"], "disc", ("patch_disc", "feature_disc"))

        # Generator: the discriminators are frozen (no gradient is computed for them, no DDP sync),
        # which changes nothing for the generator's gradient; the original zeroed them afterwards anyway.
        for k in ("refine_net", "coarse_net"):
            opt[k].zero_grad(set_to_none=True)
        with frozen(self.patch_disc, self.feature_disc), self._autocast():
            g_nets = LossNetworks(self.patch_disc, self.feature_disc, self.vgg)
            g_losses = generator_losses(batch, out, g_nets, self.cfg, real_features, fake_features)
        self._backward_and_step(g_losses["total"], "gen", ("refine_net", "coarse_net"))

        names = [("g_total" if k == "total" else k) for k in g_losses] + \
                [("d_total" if k == "total" else k) for k in d_losses]
        values = torch.stack([v.detach().float().reshape(()) for v in [*g_losses.values(), *d_losses.values()]])
        if self.distributed:
            mean_over_ranks(values, self.world_size)
        logs = dict(zip(names, values.tolist()))
        logs["lr"] = opt["refine_net"].param_groups[0]["lr"]
        return logs

    def _backward_and_step(self, loss: Tensor, scaler_name: str, optimizer_names: tuple[str, ...]) -> None:
        """backward(loss) (scaled under AMP), step the named optimisers, update the phase's GradScaler."""
        scaler = self.scalers[scaler_name]
        scaler.scale(loss).backward()
        for name in optimizer_names:
            scaler.step(self.optimizers[name])
        scaler.update()

    # ---- data ---------------------------------------------------------------------------
    def setup_data(self) -> None:
        """Build datasets, the resumable sampler and the loader (once)."""
        if self.loader is not None:
            return
        self.train_ds, self.val_ds = self._datasets if self._datasets is not None else build_datasets(self.cfg)
        self.sampler, self.loader = resumable_loader(self.train_ds, self.cfg.batch_size, self.cfg.num_workers,
                                                     self.cfg.seed, self.rank, self.world_size)
        self.steps_per_epoch = len(self.loader)  # batches in a full epoch on this rank

    def _start_epoch(self) -> None:
        start_epoch(self.sampler, self.loader, self.train_ds, self.cfg.seed, self.epoch,
                    skip=self.batch_in_epoch * self.cfg.batch_size)  # a resumed epoch skips what it has seen

    @property
    def total_steps(self) -> int:
        """cfg.max_steps, or (niter + niter_decay) epochs."""
        if self.cfg.max_steps is not None:
            return int(self.cfg.max_steps)
        self.setup_data()
        return (self.cfg.niter + self.cfg.niter_decay) * self.steps_per_epoch

    # ---- the loop -----------------------------------------------------------------------
    def fit(self) -> list[dict[str, float]]:
        """Train until `total_steps`; logs, samples, checkpoints, callbacks; returns the history rows."""
        self.setup_data()
        total = self.total_steps
        if self.is_main:
            self._open_run_folder()  # lock it, clean up after a crash, continue the log
            if total > (self.cfg.niter + self.cfg.niter_decay) * self.steps_per_epoch:
                warnings.warn("max_steps runs past niter + niter_decay epochs: the learning rate stays 0 after that",
                              RuntimeWarning, stacklevel=2)
        quiet = {} if self.is_main else {"disable": True}  # rank 0 shows the bar (TQDM_DISABLE=1 hides it)
        try:
            bar = tqdm(total=total, initial=self.step, desc="train", dynamic_ncols=True, **quiet)
        except BaseException:
            self._lock.release()
            raise
        self.stopped_by, self._last_save_time = None, time.monotonic()
        restore_signals = catch_stop_signals(self._stop)
        try:
            while self.step < total:
                self._start_epoch()
                for batch in self.loader:
                    logs = self.train_step(batch)
                    self.step += 1
                    problem = self.loss_guard.check(logs) if self.loss_guard is not None else None
                    if problem is not None:  # before any save: this step's weights are never written
                        self.diverged = diverged(self.step, problem, self.cfg.lr, self._last_checkpoint())
                        raise self.diverged
                    self.batch_in_epoch += 1
                    bar.update(1)
                    self._record(logs, bar)
                    if self.cfg.sample_every > 0 and self.step % self.cfg.sample_every == 0:
                        self.save_samples()
                    minutes = self.cfg.save_every_minutes
                    stop, late = self._agreed(self.stopped_by is not None,
                                              minutes > 0 and time.monotonic() - self._last_save_time >= 60 * minutes)
                    if late or (self.cfg.save_every > 0 and self.step % self.cfg.save_every == 0):
                        self.save()
                    self._trigger("on_step_end", logs)
                    if stop:  # no next batch is fetched: save below and say how to resume
                        self.stopped_by = self.stopped_by or "a signal on another rank"
                        break
                    if self.step >= total:
                        break
                else:  # the epoch ran out: next epoch, LR schedule step
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    for s in self.schedulers.values():
                        s.step()
                    self._trigger("on_epoch_end")
                if self.stopped_by is not None:
                    break
            restore_signals()
            if self._last_saved_step != self.step:
                self.save()
            if self.stopped_by is not None and self.is_main:
                print(f"\n{self.stopped_by}: stopped at step {self.step} of {total}, saved "
                      f"{self.out_dir / ckpt.LAST_NAME}; continue with: python -m csa_lib.cli.train "
                      f"--checkpoints-dir {self.out_dir} --resume", file=sys.stderr)
            self._trigger("on_fit_end")
        finally:
            restore_signals()
            bar.close()
            self.log.flush()
            self._lock.release()
        return self.history

    def _stop(self, signal_name: str) -> None:
        """A stop signal arrived: fit() saves and returns after the current step."""
        self.stopped_by = signal_name

    def _agreed(self, *flags: bool) -> list[bool]:
        """Each flag true on any rank (one all-reduce under DDP), so that every rank saves and stops together."""
        return any_rank(flags, self.device) if self.distributed else list(flags)

    def _trigger(self, event: str, *args: Any) -> None:
        hooks = ("on_step_end", "on_epoch_end", "on_fit_end")
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is None and event == "on_step_end" and callable(cb) and not any(hasattr(cb, h) for h in hooks):
                fn = cb  # a plain function is an on_step_end callback
            if fn is not None:
                fn(self, *args)

    # ---- logging ------------------------------------------------------------------------
    def _record(self, logs: dict[str, float], bar: Any = None) -> None:
        row = self.log.record(logs, self.step, self.epoch)
        if row is not None and self.is_main and bar is not None:
            bar.set_postfix({k: f"{row[k]:.3g}" for k in ("g_total", "d_total", "l1_refined") if k in row})

    @property
    def history(self) -> list[dict[str, float]]:
        """The averaged log rows so far ({"step", "epoch", <loss>: mean}), carried across resumes."""
        return self.log.history

    @property
    def log_path(self) -> Path:
        """`<checkpoints_dir>/log.csv`."""
        return self.log.path

    # ---- samples ------------------------------------------------------------------------
    def save_samples(self, path: str | os.PathLike | None = None, rows: int = 4) -> Path | None:
        """PNG strip (input with hole, coarse, refined, composite, truth) for a fixed batch; rank 0 only."""
        if not self.is_main:
            return None
        path = Path(path) if path is not None else self.out_dir / "samples" / f"step_{self.step:08d}.png"
        return save_generator_samples(path, self.generator, self._fixed_sample_batch(rows), self.device, self._autocast)

    def _fixed_sample_batch(self, rows: int) -> dict[str, Tensor]:
        if self._sample_batch is None:
            self.setup_data()
            self._sample_batch = fixed_sample_batch(self.train_ds, self.val_ds, rows, self.epoch)
        return self._sample_batch

    # ---- checkpoints: state_dict, load_state_dict, _resume, save (engine/train_state.py) --------

    def close(self) -> None:
        """Close TensorBoard and leave the process group if this trainer created it."""
        self.log.close()
        if self._owns_group:
            leave_process_group()
            self._owns_group = False


def fit(cfg: Config, callbacks: Iterable[Any] = (), **kwargs: Any) -> Trainer:
    """Build a Trainer, run `fit()`, close it and return it (STYLE: `fit(cfg, callbacks)`)."""
    trainer = Trainer(cfg, callbacks, **kwargs)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return trainer


if __name__ == "__main__":  # the command moved to cli/ (issue 19): say where, rather than exit doing nothing
    sys.exit("python -m csa_lib.train is now python -m csa_lib.cli.train (also installed as csa-train)")
