"""Stop a diverging training run with one clear line instead of training on at losses of 1e16.

`LossGuard.check(logs)` looks at the losses of one step (the dict `Trainer.train_step` returns) and
says what is wrong, or None. A step has diverged when one of its losses is not finite (NaN or
infinite), or when one of its weighted totals (`g_total`, `d_total`; every loss where a step has
neither) is

- above `CEILING` (1e12): no term of this model comes near that while it trains (the L1 terms are at
  most 2 times their weight of 100; the other weighted terms add order 1 to 100), or
- `GROWTH` (1000) times its running level or more: the level of a term is the smaller of the median
  of its last `WINDOW` (50) values and the median of its first `WINDOW` values, so a sudden jump and
  a slow exponential creep are both caught, and a single spike never moves the level. The level
  counts as at least `FLOOR` (1.0): a discriminator loss that falls to 0.01 and spikes back to 1, as
  GAN terms do, is noise, not divergence.

The trainer (`csa_lib.train.Trainer.fit`) runs the check after every step, before anything is saved,
and raises `TrainingDiverged` (a `UserError`: the command line prints it as one line, exit status 2):
the weights of that step are never written, so the last good checkpoint is kept. `non_finite_weights`
lets `Trainer.save` refuse networks holding NaN or infinite weights.
"""
from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from statistics import median
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from ..cli.conventions import UserError

CEILING = 1e12
"""A loss above this is exploding, whatever its history."""

GROWTH = 1e3
"""A loss this many times its running level (or more) is exploding."""

WINDOW = 50
"""Steps in the running (recent) and the starting level of each loss."""

FLOOR = 1.0
"""The smallest level a growth is measured against (GAN terms near 0 spike by large factors harmlessly)."""

NOT_LOSSES = ("lr",)
"""Entries of the step's logs that are not losses."""

FIRST = ("g_total", "d_total")
"""Named first when several losses diverge at once (they hold all the others)."""


class TrainingDiverged(UserError):
    """Training stopped because a loss is not finite or exploding; the message names the step, the loss and --lr."""


class LossGuard:
    """Tells from each step's losses whether training diverged (see the module docstring for the rule)."""

    def __init__(self, growth: float = GROWTH, window: int = WINDOW, floor: float = FLOOR,
                 ceiling: float = CEILING) -> None:
        if growth <= 1 or window < 1 or floor <= 0 or ceiling <= 0:
            raise ValueError(f"LossGuard needs growth > 1, window >= 1, floor > 0 and ceiling > 0, got "
                             f"{growth}, {window}, {floor}, {ceiling}")
        self.growth, self.window, self.floor, self.ceiling = growth, window, floor, ceiling
        self.recent: dict[str, deque[float]] = {}
        self.start: dict[str, list[float]] = {}

    def level(self, name: str) -> float | None:
        """The running level of loss `name` (min of the recent and the starting median); None before its first step."""
        if name not in self.recent:
            return None
        return min(median(self.recent[name]), median(self.start[name]))

    def check(self, logs: Mapping[str, float]) -> str | None:
        """What diverged in this step's `logs` ({loss name: value}), or None (then the values join the levels)."""
        losses = {k: float(v) for k, v in logs.items() if k not in NOT_LOSSES}
        order = [k for k in FIRST if k in losses] + [k for k in losses if k not in FIRST]
        # Growth is judged on the weighted totals where the step has them: a term's own scale says nothing
        # of what the optimiser sees (round 9's consistency term, at weight 1e-5, ran from 7e3 to 4e6).
        sized = [k for k in FIRST if k in losses] or order
        problem = (self._first(order, losses, self._non_finite) or self._first(sized, losses, self._too_big)
                   or self._first(sized, losses, self._grown))
        if problem is None:
            self._add(losses)
        return problem

    @staticmethod
    def _first(order: Iterable[str], losses: Mapping[str, float],
               test: Callable[[str, float], str | None]) -> str | None:
        return next((text for text in (test(k, losses[k]) for k in order) if text is not None), None)

    @staticmethod
    def _non_finite(name: str, value: float) -> str | None:
        return None if math.isfinite(value) else f"{name} is {value} (non-finite loss)"

    def _too_big(self, name: str, value: float) -> str | None:
        if abs(value) <= self.ceiling:
            return None
        return f"{name} {value:.2g} is over {self.ceiling:.0e}, far beyond any loss of this model (exploding loss)"

    def _grown(self, name: str, value: float) -> str | None:
        level = self.level(name)
        if level is None or abs(value) < self.growth * max(abs(level), self.floor):
            return None
        times = f"{abs(value) / abs(level):.0e}x" if level else "infinitely many times"
        return f"{name} {value:.2g} is {times} its running level {level:.2g} (exploding loss)"

    def _add(self, losses: Mapping[str, float]) -> None:
        for name, value in losses.items():
            self.recent.setdefault(name, deque(maxlen=self.window)).append(value)
            start = self.start.setdefault(name, [])
            if len(start) < self.window:
                start.append(value)


def non_finite_weights(nets: Mapping[str, nn.Module]) -> list[str]:
    """Names of the networks in `nets` ({name: module}) that hold a NaN or infinite parameter or buffer."""
    bad = []
    for name, net in nets.items():
        tensors = [*net.parameters(), *(b for b in net.buffers() if b.is_floating_point())]
        if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
            bad.append(name)
    return bad


def diverged(step: int, problem: str, lr: float, last_checkpoint: Path | None) -> TrainingDiverged:
    """The one-line error: the step, what diverged, the learning rate to lower, and which checkpoint is kept."""
    kept = (f"the last good checkpoint {last_checkpoint} is kept" if last_checkpoint is not None
            else "no checkpoint was written")
    return TrainingDiverged(f"training diverged at step {step}: {problem}; lower --lr (Config.lr, now {lr:g}); "
                            f"{kept}")
