"""Training: a minGPT-style `Trainer` (train_step -> dict, fit, callbacks), resumable checkpoints, DDP, CLI.

One optimisation step follows the original `optimize_parameters` (`docs/csa_spec.md` §5):
forward; zero D and F, backward `discriminator_losses(...)["total"]`, step D and F; zero G and P,
backward `generator_losses(...)["total"]`, step G and P. Four Adam optimisers, one LambdaLR each,
stepped once per epoch (spec §7).

Resuming is exact: the data order is a pure function of (seed, epoch) (`ResumableSampler`), the
datasets draw masks and flips from (seed, epoch, index), and a checkpoint stores the position inside
the epoch, so a resumed run skips the batches it has already seen and then sees the same batches,
masks, learning rates and optimiser states as an uninterrupted run.

Distributed: launched by `torchrun` (WORLD_SIZE > 1) the trainer joins a process group (NCCL on CUDA,
gloo on CPU), wraps the three networks in DistributedDataParallel and splits every epoch between the
ranks. Only rank 0 writes checkpoints, logs and samples.

CLI: `python -m csa_lib.train --data-root DIR [--any-config-field ...] [--smoke] [--resume] [--device]`
(also installed as `csa-train`). Every Config field has a flag.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import math
import os
import random
import signal
import sys
import threading
import time
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler

from . import checkpoint as ckpt
from .runlock import RunLock
from .cli import Parser, UserError, device, run_cli
from .config import MASK_TYPES, Config
from .losses import LossNetworks, discriminator_losses, generator_losses
from .model import build_models

OPTIMIZER_NAMES = ("refine_net", "coarse_net", "patch_disc", "feature_disc")  # G, P, D, F of the original


# --------------------------------------------------------------------------------------------
# Learning-rate schedule and data order
# --------------------------------------------------------------------------------------------
def lr_factor(epoch: int, niter: int, niter_decay: int, epoch_count: int = 1) -> float:
    """LR multiplier after `epoch` completed epochs: 1 - max(0, e + 1 + epoch_count - niter) / (niter_decay + 1).

    1.0 for the first niter - 1 epochs, then a linear decay that reaches 0 after niter + niter_decay - 1
    epochs (the original's formula, spec §7); clamped at 0 if training runs longer than the schedule.
    """
    return max(0.0, 1.0 - max(0, epoch + 1 + epoch_count - niter) / float(niter_decay + 1))


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


# --------------------------------------------------------------------------------------------
# Distributed helpers
# --------------------------------------------------------------------------------------------
def dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the torchrun environment; (0, 0, 1) when not distributed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------
class Trainer:
    """Trains generator + both discriminators: `train_step(batch) -> dict`, `fit()`, exact `resume`.

    Args:
        cfg: the Config (saved inside every checkpoint).
        callbacks: objects with any of `on_step_end(trainer, logs)`, `on_epoch_end(trainer)`,
            `on_fit_end(trainer)`; a plain callable is taken as `on_step_end`.
        device: defaults to CUDA when available (each rank's local GPU under torchrun).
        resume: True = continue from the newest valid checkpoint in `cfg.checkpoints_dir` (fresh start
            if there is none), or the path of a checkpoint file.
        datasets: (train_ds, val_ds) to use instead of `csa_lib.data.build_datasets(cfg)`.
    """

    def __init__(self, cfg: Config, callbacks: Iterable[Any] = (), *, device: str | torch.device | None = None,
                 resume: bool | str | os.PathLike = False, datasets: tuple[Any, Any] | None = None):
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.rank, self.local_rank, self.world_size = dist_env()
        self.distributed = self.world_size > 1
        self.device = self._pick_device(device)
        self._owns_group = False
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self._owns_group = True
        self.is_main = self.rank == 0
        self.out_dir = Path(cfg.checkpoints_dir)
        self.amp = bool(cfg.amp) and self.device.type == "cuda"

        from .utils import seed_everything
        seed_everything(cfg.seed)  # same initial weights on every rank
        self.generator, self.patch_disc, self.feature_disc = (m.to(self.device) for m in build_models(cfg))
        if cfg.init_generator:
            self._init_generator(cfg.init_generator)  # a resumed run then overwrites these with its own
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
        self.history: list[dict[str, float]] = []  # one averaged row every cfg.log_every steps
        self._pending: dict[str, float] = {}
        self._pending_count = 0
        self.resumed_from: Path | None = None
        self._datasets = datasets
        self.train_ds = self.val_ds = self.sampler = self.loader = None
        self._sample_batch: dict[str, Tensor] | None = None
        self._tb = None
        self._last_saved_step = -1
        self._last_save_time = time.monotonic()
        self.stopped_by: str | None = None  # "SIGINT" / "SIGTERM" when a signal ended fit() early
        self._lock = RunLock(self.out_dir)  # taken by fit() and save(): one writer per run folder
        self._truncate_log_at: int | None = None

        if resume:
            self._resume(resume)
        self._wrap_ddp()

    # ---- construction helpers -------------------------------------------------------------
    def _pick_device(self, device: str | torch.device | None) -> torch.device:
        if device is not None:
            dev = torch.device(device)
        elif torch.cuda.is_available():
            dev = torch.device("cuda", self.local_rank if self.distributed else torch.cuda.current_device())
        else:
            dev = torch.device("cpu")
        if dev.type == "cuda":
            if self.distributed and dev.index is None:
                dev = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(dev)
        return dev

    def _init_generator(self, path: str | os.PathLike) -> None:
        """Copy the weights of a trained generator (our checkpoint or export, a run folder, or the original layout)."""
        from .inference import load_model

        source = load_model(path, device="cpu")
        ours = (self.generator.ngf, self.generator.image_size)
        if (source.ngf, source.image_size) != ours:
            raise ValueError(f"init_generator {path} is a model with ngf={source.ngf}, image_size={source.image_size}; "
                             f"this run has ngf={ours[0]}, image_size={ours[1]}: set --ngf and --image-size to match")
        self.generator.load_state_dict(source.state_dict())

    def _build_vgg(self) -> nn.Module | None:
        if not self.cfg.use_vgg:
            return None  # VGG-free training: consistency and feature-adversarial terms are off
        from .vgg import VGG16Features
        if self.distributed and not self.is_main:
            _barrier()  # let rank 0 fetch / cache the weights first
        vgg = VGG16Features(self.cfg.vgg_weights).to(self.device).eval()
        if self.distributed and self.is_main:
            _barrier()
        for p in vgg.parameters():
            p.requires_grad_(False)
        return vgg

    def _lr_lambda(self, epoch: int) -> float:
        return lr_factor(epoch, self.cfg.niter, self.cfg.niter_decay)

    def _wrap_ddp(self) -> None:
        if not self.distributed:
            self.ddp_generator, self.ddp_patch_disc, self.ddp_feature_disc = (
                self.generator, self.patch_disc, self.feature_disc)
            return
        ids = [self.device.index] if self.device.type == "cuda" else None
        # The coarse net is reached only through its own L1 term when its output is detached.
        unused = self.cfg.lambda_l1 == 0 and self.cfg.detach_coarse
        wrap = lambda m, u=False: DistributedDataParallel(  # noqa: E731
            m, device_ids=ids, broadcast_buffers=False, find_unused_parameters=u)  # no running stats anywhere
        self.ddp_generator = wrap(self.generator, unused)
        self.ddp_patch_disc, self.ddp_feature_disc = wrap(self.patch_disc), wrap(self.feature_disc)

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

        # Discriminators: zero, backward the total, step both (the DDP wrappers average the gradients).
        for k in ("patch_disc", "feature_disc"):
            opt[k].zero_grad(set_to_none=True)
        with self._autocast():
            d_nets = LossNetworks(self.ddp_patch_disc, self.ddp_feature_disc, self.vgg)
            d_losses = discriminator_losses(batch, out, d_nets, real_features)
        self._backward_and_step(d_losses["total"], "disc", ("patch_disc", "feature_disc"))

        # Generator: the discriminators are frozen (no gradient is computed for them, no DDP sync),
        # which changes nothing for the generator's gradient; the original zeroed them afterwards anyway.
        for k in ("refine_net", "coarse_net"):
            opt[k].zero_grad(set_to_none=True)
        with self._frozen(self.patch_disc, self.feature_disc), self._autocast():
            g_nets = LossNetworks(self.patch_disc, self.feature_disc, self.vgg)
            g_losses = generator_losses(batch, out, g_nets, self.cfg, real_features)
        self._backward_and_step(g_losses["total"], "gen", ("refine_net", "coarse_net"))

        names = [("g_total" if k == "total" else k) for k in g_losses] + \
                [("d_total" if k == "total" else k) for k in d_losses]
        values = torch.stack([v.detach().float().reshape(()) for v in [*g_losses.values(), *d_losses.values()]])
        if self.distributed:
            dist.all_reduce(values)
            values /= self.world_size
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

    @staticmethod
    @contextlib.contextmanager
    def _frozen(*modules: nn.Module) -> Iterator[None]:
        flags = [(p, p.requires_grad) for m in modules for p in m.parameters()]
        for p, _ in flags:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)

    # ---- data ---------------------------------------------------------------------------
    def setup_data(self) -> None:
        """Build datasets, the resumable sampler and the loader (once)."""
        if self.loader is not None:
            return
        from .data import build_datasets, make_loader
        self.train_ds, self.val_ds = self._datasets if self._datasets is not None else build_datasets(self.cfg)
        self.sampler = ResumableSampler(len(self.train_ds), self.cfg.seed, shuffle=True,
                                        rank=self.rank, world_size=self.world_size)
        self.loader = make_loader(self.train_ds, self.cfg.batch_size, shuffle=False,
                                  num_workers=self.cfg.num_workers, seed=self.cfg.seed, sampler=self.sampler)
        if getattr(self.loader, "generator", None) is None:
            self.loader.generator = torch.Generator()  # keeps the loader off the global torch RNG
        self.sampler.set_epoch(0, 0)
        self.steps_per_epoch = len(self.loader)  # batches in a full epoch on this rank

    def _start_epoch(self) -> None:
        skip = self.batch_in_epoch * self.cfg.batch_size
        self.sampler.set_epoch(self.epoch, skip)
        if hasattr(self.train_ds, "set_epoch"):
            self.train_ds.set_epoch(self.epoch)  # masks of this epoch
        # worker seeds: a pure function of (seed, epoch), not of how many epochs this process has run
        self.loader.generator.manual_seed(self.cfg.seed * 100_003 + self.epoch)

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
        from tqdm.auto import tqdm
        self.setup_data()
        total = self.total_steps
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()  # before anything is written: a second trainer on this folder stops here
            for stale in ckpt.remove_stale_temp_files(self.out_dir):
                print(f"removed {stale}, left by an interrupted save", file=sys.stderr)
            if self._truncate_log_at is not None:
                self._truncate_csv(self._truncate_log_at)
                self._truncate_log_at = None
            self._open_tensorboard()
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
        restore_signals = self._catch_stop_signals()
        try:
            while self.step < total:
                self._start_epoch()
                for batch in self.loader:
                    logs = self.train_step(batch)
                    self.step += 1
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
                      f"{self.out_dir / ckpt.LAST_NAME}; continue with: python -m csa_lib.train "
                      f"--checkpoints-dir {self.out_dir} --resume", file=sys.stderr)
            self._trigger("on_fit_end")
        finally:
            restore_signals()
            bar.close()
            if self._tb is not None:
                self._tb.flush()
            self._lock.release()
        return self.history

    def _catch_stop_signals(self) -> Callable[[], None]:
        """Until the returned function is called, SIGINT (Ctrl-C) and SIGTERM end fit() after the current step.

        A second signal gets the previous handler (Ctrl-C then interrupts at once). Only the main
        thread can set handlers; elsewhere signals keep their usual effect.
        """
        previous: dict[int, Any] = {}

        def restore() -> None:
            while previous:
                signal.signal(*previous.popitem())

        def stop(signum: int, frame: Any) -> None:
            self.stopped_by = signal.Signals(signum).name
            restore()

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, stop)
        return restore

    def _agreed(self, *flags: bool) -> list[bool]:
        """Each flag true on any rank (one all-reduce under DDP), so that every rank saves and stops together."""
        if not self.distributed:
            return list(flags)
        values = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return (values > 0).tolist()

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
        for k, v in logs.items():
            self._pending[k] = self._pending.get(k, 0.0) + float(v)
        self._pending_count += 1
        if self.step % max(1, self.cfg.log_every):
            return
        row = {"step": self.step, "epoch": self.epoch}
        row.update({k: v / self._pending_count for k, v in self._pending.items()})
        self._pending, self._pending_count = {}, 0
        self.history.append(row)
        if self.is_main:
            self._write_csv_row(row)
            if self._tb is not None:
                for k, v in row.items():
                    if k not in ("step", "epoch"):
                        self._tb.add_scalar(f"train/{k}", v, self.step)
            if bar is not None:
                bar.set_postfix({k: f"{row[k]:.3g}" for k in ("g_total", "d_total", "l1_refined") if k in row})

    @property
    def log_path(self) -> Path:
        """`<checkpoints_dir>/log.csv`."""
        return self.out_dir / "log.csv"

    def _write_csv_row(self, row: dict[str, float]) -> None:
        path = self.log_path
        header = None
        if path.is_file() and path.stat().st_size > 0:
            with open(path, newline="") as f:
                header = next(csv.reader(f), None)
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header or list(row), extrasaction="ignore", restval="")
            if header is None:
                writer.writeheader()
            writer.writerow(row)

    def _truncate_csv(self, step: int) -> None:
        """Drop log rows written after `step` by a run that crashed before its next checkpoint."""
        path = self.log_path
        if not path.is_file():
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        col = header.index("step") if "step" in header else None
        keep = [r for r in body if col is None or (r and int(float(r[col])) <= step)]
        if len(keep) != len(body):
            tmp = path.with_name(f".{path.name}.tmp")
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows([header, *keep])
            os.replace(tmp, path)

    def _open_tensorboard(self) -> None:
        if self._tb is not None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=self.step or None)

    # ---- samples ------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(self, path: str | os.PathLike | None = None, rows: int = 4) -> Path | None:
        """PNG strip (input with hole, coarse, refined, composite, truth) for a fixed batch; rank 0 only."""
        if not self.is_main:
            return None
        from .viz import save_sample_strip
        batch = self._fixed_sample_batch(rows)
        image = batch["image"].to(self.device)
        mask = batch["mask"].to(self.device)
        was_training = self.generator.training
        self.generator.eval()
        with self._autocast():
            out = self.generator(image, mask)
        self.generator.train(was_training)
        path = Path(path) if path is not None else self.out_dir / "samples" / f"step_{self.step:08d}.png"
        return save_sample_strip(path, image, mask, out)

    def _fixed_sample_batch(self, rows: int) -> dict[str, Tensor]:
        if self._sample_batch is None:
            self.setup_data()
            ds = self.val_ds if self.val_ds is not None and len(self.val_ds) > 0 else self.train_ds
            if hasattr(ds, "set_epoch") and ds is self.val_ds:
                ds.set_epoch(0)
            with torch.random.fork_rng(devices=[]):  # datasets with random crops must not shift the training RNG
                items = [ds[i] for i in range(min(rows, len(ds)))]
            self._sample_batch = {k: torch.stack([it[k] for it in items]) for k in ("image", "mask")}
            if ds is self.train_ds and hasattr(ds, "set_epoch"):
                ds.set_epoch(self.epoch)
        return self._sample_batch

    # ---- checkpoints --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint dict (docs/INTERFACES.md), plus `scalers` (AMP) and `log_state`."""
        rng = rng_state()
        rng["data"] = {"seed": self.cfg.seed, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                       "world_size": self.world_size, "batch_size": self.cfg.batch_size}
        return {
            "format": ckpt.FORMAT,
            "config": self.cfg.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "generator": self.generator.state_dict(),
            "patch_disc": self.patch_disc.state_dict(),
            "feature_disc": self.feature_disc.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng": rng,
            "history": list(self.history),
            "log_state": {"pending": dict(self._pending), "count": self._pending_count},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore weights, optimisers, schedulers, scalers, counters, RNG and history from a checkpoint dict."""
        saved = Config.from_dict(state["config"])
        for name in ("image_size", "ngf", "ndf"):
            if getattr(saved, name) != getattr(self.cfg, name):
                raise ValueError(f"checkpoint has {name}={getattr(saved, name)} but the config says "
                                 f"{getattr(self.cfg, name)}; resume with the checkpoint's model settings")
        data = state["rng"].get("data", {})
        for name, now in (("batch_size", self.cfg.batch_size), ("world_size", self.world_size),
                          ("seed", self.cfg.seed)):
            if name in data and data[name] != now:
                warnings.warn(f"resuming with {name}={now} (checkpoint: {data[name]}): the data order will not "
                              f"continue exactly", RuntimeWarning, stacklevel=2)
        self.generator.load_state_dict(state["generator"])
        self.patch_disc.load_state_dict(state["patch_disc"])
        self.feature_disc.load_state_dict(state["feature_disc"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        for k, s in self.scalers.items():
            if k in state.get("scalers", {}):
                s.load_state_dict(state["scalers"][k])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(data.get("batch_in_epoch", 0))
        self.history = list(state.get("history", []))
        log_state = state.get("log_state", {})
        self._pending, self._pending_count = dict(log_state.get("pending", {})), int(log_state.get("count", 0))
        set_rng_state(state["rng"])
        self._last_saved_step = self.step

    def _resume(self, resume: bool | str | os.PathLike) -> None:
        if resume is True:
            found = ckpt.load_latest(self.out_dir, map_location=self.device)
            if found is None:
                if self.is_main:
                    print(f"resume: no checkpoint in {self.out_dir}, starting from scratch", file=sys.stderr)
                return
            path, state = found
        else:
            path = Path(resume)
            state = ckpt.load_checkpoint(path, map_location=self.device)
        self.load_state_dict(state)
        self.resumed_from = path
        self._truncate_log_at = self.step  # done by fit(), once it holds the run folder's lock
        if self.is_main:
            print(f"resumed from {path} at step {self.step} (epoch {self.epoch}, "
                  f"batch {self.batch_in_epoch})", file=sys.stderr)

    def save(self) -> Path | None:
        """Write `step_<step>.pt` and `last.pt` (rank 0), prune old ones; all ranks wait for it."""
        path = None
        _barrier()
        if self.is_main:
            held = self._lock.held
            self._lock.acquire()  # a save outside fit() takes the lock for its own duration
            try:
                path = ckpt.save_training_checkpoint(self.out_dir, self.state_dict(), self.cfg.keep_checkpoints)
            finally:
                if not held:
                    self._lock.release()
        _barrier()
        self._last_saved_step, self._last_save_time = self.step, time.monotonic()
        return path

    def close(self) -> None:
        """Close TensorBoard and leave the process group if this trainer created it."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self._owns_group = False


def fit(cfg: Config, callbacks: Iterable[Any] = (), **kwargs: Any) -> Trainer:
    """Build a Trainer, run `fit()`, close it and return it (STYLE: `fit(cfg, callbacks)`)."""
    trainer = Trainer(cfg, callbacks, **kwargs)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return trainer


# --------------------------------------------------------------------------------------------
# Command line: one flag per Config field
# --------------------------------------------------------------------------------------------
def _none_or(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null", "") else kind(text)
    convert.__name__ = getattr(kind, "__name__", "value")
    return convert


def config_flag(name: str) -> str:
    """The CLI flag of a Config field: `batch_size` -> `--batch-size`."""
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """Argparse parser with one flag per Config field (bools as --x/--no-x), plus --smoke, --resume, --device."""
    parser = Parser(
        prog="csa-train", description="Train CSA inpainting. Unset flags keep the Config (or --smoke, or resumed) value.")
    parser.add_argument("--smoke", action="store_true", help="start from Config.smoke() (64 px, ngf 8, random VGG)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest valid checkpoint in --checkpoints-dir (and its config); "
                             "an error if there is none")
    parser.add_argument("--device", type=device, default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    group = parser.add_argument_group("config", "every Config field (see csa_lib/config.py)")
    hints = typing.get_type_hints(Config)
    defaults = Config()
    for f in dataclasses.fields(Config):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = (typing.get_origin(hint) in (typing.Union, types.UnionType)) and type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if optional else hint
        text = f"{f.metadata.get('help', f.name)} (Config default: {getattr(defaults, f.name)!r})"
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": text}
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = _none_or(base) if optional else base
            kw["metavar"] = base.__name__.upper() + ("|none" if optional else "")
            if f.name == "mask_type":
                kw["choices"] = MASK_TYPES
        group.add_argument(config_flag(f.name), **kw)
    return parser


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """`base` (default Config() or Config.smoke()) with every flag the user gave applied."""
    if base is None:
        base = Config.smoke() if getattr(args, "smoke", False) else Config()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    return base.replace(**given)


def _vgg_hint(error: Exception) -> UserError:
    """The missing-ImageNet-VGG16 error in the flags the user typed."""
    from .vgg import IMAGENET_WEIGHTS, imagenet_weights_path
    return UserError(f"no ImageNet VGG16 weights (not in {imagenet_weights_path()}, and the download failed: "
                     f"{type(error.__cause__ or error).__name__}); train without the VGG terms with --no-use-vgg, "
                     f"or pass --vgg-weights PATH (a VGG16 state dict such as {IMAGENET_WEIGHTS.url}, downloaded "
                     f"elsewhere)")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (`python -m csa_lib.train`, `csa-train`); user errors are one line and exit status 2."""
    args = build_parser().parse_args(argv)
    return run_cli("csa-train", args.debug, lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    from .vgg import VGGWeightsUnavailable
    try:
        cfg = config_from_args(args)
    except ValueError as error:  # Config.__post_init__ checks the values
        raise UserError(f"bad setting: {error}") from error
    resume: bool | Path = False
    if args.resume:  # the newest checkpoint that fully loads (damaged ones skipped with a warning), else an error
        found, state = ckpt.resume_point(cfg.checkpoints_dir)
        cfg = config_from_args(args, Config.from_dict(state["config"]))  # its settings, then explicit flags
        resume = found
    try:
        trainer = Trainer(cfg, device=args.device, resume=resume)
    except VGGWeightsUnavailable as error:
        raise _vgg_hint(error) from error
    try:
        trainer.fit()
        if trainer.stopped_by is not None:
            return 128 + getattr(signal, trainer.stopped_by, signal.SIGINT)  # 130 (Ctrl-C) / 143, as shells expect
        if trainer.is_main:
            print(f"done: step {trainer.step}, checkpoint {Path(cfg.checkpoints_dir) / ckpt.LAST_NAME}, "
                  f"log {trainer.log_path}")
    finally:
        trainer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
