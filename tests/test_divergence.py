"""The divergence detector: NaN, infinity, a jump of orders of magnitude, a slow creep; no alarm on real noisy losses."""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from csa_lib.engine.divergence import CEILING, GROWTH, LossGuard, TrainingDiverged, diverged, non_finite_weights

SMOKE_LOSSES = Path(__file__).parent / "data" / "smoke_run_losses.csv"


def feed(guard: LossGuard, rows: list[dict[str, float]]) -> tuple[int, str] | None:
    """(1-based step, problem) of the first row the guard refuses, or None."""
    for step, row in enumerate(rows, start=1):
        problem = guard.check(row)
        if problem is not None:
            return step, problem
    return None


def steady(n: int, level: float = 50.0, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"g_total": float(level * rng.uniform(0.7, 1.3)), "d_total": float(rng.uniform(0.1, 1.0)),
             "lr": 2e-4} for _ in range(n)]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_is_named_at_once(bad):
    rows = steady(5)
    rows[3]["d_total"] = bad
    step, problem = feed(LossGuard(), rows)
    assert step == 4 and problem.startswith(f"d_total is {bad}") and "non-finite" in problem


def test_a_jump_of_orders_of_magnitude_is_named_with_its_ratio():
    rows = steady(30)
    rows[20]["g_total"] = 3.1e7  # about 6e5 times the level of ~50
    step, problem = feed(LossGuard(), rows)
    assert step == 21 and problem.startswith("g_total 3.1e+07 is ")
    times, level = re.search(r"is (\S+)x its running level (\S+) ", problem).groups()
    assert 35 < float(level) < 65 and float(times) == pytest.approx(3.1e7 / float(level), rel=0.5)


def test_a_lightly_weighted_term_growing_is_judged_by_the_totals_but_its_nan_is_not_forgiven():
    """Round 9's consistency term (weight 1e-5) grew about 570x while the totals stayed level: not divergence."""
    rows = steady(120)
    for k, row in enumerate(rows):
        row["consistency_csa"] = 7e3 * (1.06 ** k)  # 7e3 -> 7e3 * 1000 and more, g_total unchanged
    assert rows[-1]["consistency_csa"] > GROWTH * 7e3
    assert feed(LossGuard(), rows) is None
    rows[60]["consistency_csa"] = math.nan
    step, problem = feed(LossGuard(), rows)
    assert step == 61 and problem.startswith("consistency_csa is nan")
    alone = [{"consistency_csa": 7e3}] * 10 + [{"consistency_csa": 7e3 * GROWTH * 1.01}]  # no totals: every loss
    assert feed(LossGuard(), alone)[0] == 11


def test_the_ceiling_catches_an_explosion_at_the_very_first_step():
    step, problem = feed(LossGuard(), [{"g_total": 2.5e18, "d_total": 1.0}])
    assert step == 1 and "g_total 2.5e+18 is over 1e+12" in problem
    assert feed(LossGuard(), [{"g_total": CEILING / 2, "d_total": 1.0}]) is None  # the ceiling itself is not crossed


def test_just_under_the_growth_factor_passes_and_just_over_stops():
    base = [{"g_total": 10.0}] * 10
    assert feed(LossGuard(), base + [{"g_total": 10.0 * GROWTH * 0.99}]) is None
    assert feed(LossGuard(), base + [{"g_total": 10.0 * GROWTH * 1.01}])[0] == 11


def test_a_slow_exponential_creep_is_caught_against_the_starting_level():
    """+5 % a step: the recent median follows it (about 3.4x behind), the median of the first 50 steps does not."""
    rows = [{"g_total": 50.0 * 1.05 ** k} for k in range(400)]
    step, problem = feed(LossGuard(), rows)
    start = float(np.median([r["g_total"] for r in rows[:50]]))
    assert rows[step - 1]["g_total"] >= GROWTH * start > rows[step - 2]["g_total"]
    assert f"its running level {start:.2g} " in problem
    recent = float(np.median([r["g_total"] for r in rows[step - 51:step - 1]]))
    assert rows[step - 1]["g_total"] / recent < 4  # against the recent level alone it would never stop


def test_small_gan_losses_spiking_back_to_one_are_not_divergence():
    """A discriminator term falling to 0.005 and spiking 100x: under FLOOR, so noise, not divergence."""
    rng = np.random.default_rng(1)
    rows = []
    for k in range(20_000):
        d = 0.005 * math.exp(rng.normal(0, 1.0))
        if rng.random() < 0.01:
            d *= 100  # a spike when the generator makes a leap
        g = 45 * math.exp(rng.normal(0, 0.3)) * (8 if rng.random() < 0.002 else 1)
        rows.append({"g_total": g, "d_feature": d, "d_total": 2 * d, "lr": 2e-4})
    assert feed(LossGuard(), rows) is None


def test_no_alarm_on_the_per_step_losses_of_a_real_smoke_run():
    """400 steps at the default learning rate, every step logged (tests/data/smoke_run_losses.csv).

    Made by `python -m csa_lib.cli.train --smoke --data-root synthetic --max-steps 400 --log-every 1
    --sample-every 0 --save-every 0 --save-every-minutes 0 --device cpu`: its log.csv, to 5 digits, no lr.
    """
    with open(SMOKE_LOSSES, newline="") as f:
        rows = [{k: float(v) for k, v in row.items() if k not in ("step", "epoch")} for row in csv.DictReader(f)]
    assert len(rows) == 400 and {"g_total", "d_total", "adv_image", "d_feature"} <= set(rows[0])
    spread = max(r["d_feature"] for r in rows) / min(r["d_feature"] for r in rows)
    assert spread > 10  # the GAN terms really are noisy
    assert feed(LossGuard(), rows) is None
    # ... and the same run with one step gone wrong is caught
    broken = [dict(r) for r in rows]
    broken[300]["g_total"] *= 1e5
    assert feed(LossGuard(), broken)[0] == 301


def test_the_stop_message_names_the_step_the_problem_the_lr_and_the_checkpoint(tmp_path):
    error = diverged(212, "g_total 3.1e+16 is 1e+14x its running level 2.4e+02 (exploding loss)", 1e4, None)
    assert isinstance(error, TrainingDiverged) and isinstance(error, ValueError)
    assert str(error) == ("training diverged at step 212: g_total 3.1e+16 is 1e+14x its running level 2.4e+02 "
                          "(exploding loss); lower --lr (Config.lr, now 10000); no checkpoint was written")
    kept = diverged(3, "x", 2e-4, tmp_path / "last.pt")
    assert "now 0.0002" in str(kept) and f"the last good checkpoint {tmp_path / 'last.pt'} is kept" in str(kept)


def test_non_finite_weights_names_the_networks():
    good, bad = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    norm = torch.nn.BatchNorm1d(2)
    assert non_finite_weights({"good": good, "norm": norm}) == []
    with torch.no_grad():
        bad.weight[0, 1] = math.nan
    norm.running_mean[0] = math.inf  # a buffer counts too
    assert non_finite_weights({"good": good, "bad": bad, "norm": norm}) == ["bad", "norm"]


def test_bad_guard_settings_are_refused():
    with pytest.raises(ValueError, match="growth > 1"):
        LossGuard(growth=1.0)
