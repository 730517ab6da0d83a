"""The trainer's helpers on their own: sampler, RNG state, loss log, checkpoint dict, stop signals, frozen params, the command convention."""
from __future__ import annotations

import csv
import importlib
import os
import random
import signal
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from csa_lib.engine import checkpoint as ckpt
from csa_lib.config import Config
from csa_lib.data import fixed_sample_batch
from csa_lib.engine.run_log import RunLog, truncate_csv, write_csv_row
from csa_lib.engine.data_order import ResumableSampler, resumable_loader, rng_state, set_rng_state, start_epoch
from csa_lib.engine.train_state import (NETS, OPTIM_GROUPS, check_resume_settings, data_position, find_checkpoint,
                                 pack_state, unpack_state)
from csa_lib.utils import catch_stop_signals, frozen


def _read_csv(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


# ---- sampling ----------------------------------------------------------------------------------
def test_sampler_order_depends_on_seed_and_epoch_only_and_ranks_split_it():
    a, b = ResumableSampler(10, seed=1), ResumableSampler(10, seed=1)
    assert a.epoch_indices(3) == b.epoch_indices(3) and sorted(a.epoch_indices(3)) == list(range(10))
    assert a.epoch_indices(3) != a.epoch_indices(4)
    ranks = [ResumableSampler(5, seed=1, rank=r, world_size=2) for r in (0, 1)]
    shares = [r.epoch_indices(0) for r in ranks]
    assert [len(s) for s in shares] == [3, 3] and set(shares[0] + shares[1]) == set(range(5))  # padded to 6
    ranks[1].set_epoch(0, skip=2)
    assert list(ranks[1]) == shares[1][2:] and len(ranks[1]) == 1
    with pytest.raises(ValueError, match="empty"):
        ResumableSampler(0, seed=1)


def test_loader_epochs_start_where_they_are_told():
    ds = [{"i": torch.tensor(i)} for i in range(6)]
    sampler, loader = resumable_loader(ds, batch_size=2, num_workers=0, seed=4)
    start_epoch(sampler, loader, ds, seed=4, epoch=1)
    full = [b["i"].tolist() for b in loader]
    start_epoch(sampler, loader, ds, seed=4, epoch=1, skip=2)  # a run resumed after one batch
    assert [b["i"].tolist() for b in loader] == full[1:]
    assert loader.generator.initial_seed() == 4 * 100_003 + 1


def test_rng_state_round_trip_restores_every_generator():
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert isinstance(state["numpy"]["keys"], torch.Tensor)  # weights_only-safe: no numpy arrays


# ---- run log -----------------------------------------------------------------------------------
def test_run_log_averages_rows_writes_csv_and_carries_the_pending_steps(tmp_path):
    log = RunLog(tmp_path, every=2)
    assert log.record({"a": 1.0, "b": 4.0}, step=1, epoch=0) is None
    row = log.record({"a": 3.0, "b": 0.0}, step=2, epoch=0)
    assert row == {"step": 2, "epoch": 0, "a": 2.0, "b": 2.0} and log.history == [row]
    assert log.record({"a": 5.0, "b": 1.0}, step=3, epoch=1) is None
    carried = RunLog(tmp_path, every=2)
    carried.load_state_dict(log.state_dict(), log.history)  # what a checkpoint at step 3 holds
    for run in (log, carried):
        assert run.record({"a": 7.0, "b": 1.0}, step=4, epoch=1)["a"] == 6.0
    assert _read_csv(log.path) == [["step", "epoch", "a", "b"], ["2", "0", "2.0", "2.0"],
                                   ["4", "1", "6.0", "1.0"], ["4", "1", "6.0", "1.0"]]
    silent = RunLog(tmp_path / "rank1", every=1, write=False)
    silent.record({"a": 1.0}, step=1, epoch=0)
    assert len(silent.history) == 1 and not silent.path.exists()


def test_csv_rows_keep_the_first_header_and_truncate_drops_later_steps(tmp_path):
    path = tmp_path / "log.csv"
    for step in (1, 2, 3):
        write_csv_row(path, {"step": step, "x": step / 2, **({"new": 1} if step == 3 else {})})
    assert _read_csv(path)[0] == ["step", "x"] and len(_read_csv(path)) == 4
    truncate_csv(path, 1)
    assert _read_csv(path) == [["step", "x"], ["1", "0.5"]]
    truncate_csv(tmp_path / "missing.csv", 0)  # nothing to do
    assert not (tmp_path / "missing.csv").exists()


# ---- checkpoint dict -----------------------------------------------------------------------------
def _objects(seed: int) -> tuple[dict, dict]:
    torch.manual_seed(seed)
    nets = {name: nn.Linear(3, 2) for name in NETS}
    optimizers = {"g": torch.optim.Adam(nets["generator"].parameters(), lr=0.1)}
    schedulers = {"g": torch.optim.lr_scheduler.LambdaLR(optimizers["g"], lambda e: 0.5 ** e)}
    scalers = {"gen": torch.amp.GradScaler("cuda", enabled=False)}
    return nets, {"optimizers": optimizers, "schedulers": schedulers, "scalers": scalers}


def test_pack_state_has_the_checkpoint_keys_and_unpack_restores_them():
    cfg = Config.smoke()
    nets, groups = _objects(0)
    nets["generator"](torch.ones(1, 3)).sum().backward()
    groups["optimizers"]["g"].step()
    groups["schedulers"]["g"].step()
    state = pack_state(cfg, 7, 2, nets, groups, {"torch": torch.get_rng_state()}, [{"step": 7}], {"count": 1})
    assert list(state) == ["format", "config", "step", "epoch", *NETS, *OPTIM_GROUPS, "rng", "history", "log_state"]
    assert state["format"] == ckpt.FORMAT and state["config"] == cfg.to_dict() and state["step"] == 7

    fresh_nets, fresh_groups = _objects(1)
    del state["scalers"]  # older checkpoints have none
    unpack_state(state, fresh_nets, fresh_groups)
    for name in NETS:
        assert all(torch.equal(a, b) for a, b in zip(nets[name].parameters(), fresh_nets[name].parameters()))
    assert fresh_groups["schedulers"]["g"].last_epoch == 1
    assert fresh_groups["optimizers"]["g"].state_dict()["state"][0]["step"] == 1


def test_resume_settings_refuse_another_model_and_warn_about_another_data_order():
    cfg = Config.smoke()
    data = data_position(cfg, epoch=2, batch_in_epoch=3, world_size=1)
    assert data == {"seed": cfg.seed, "epoch": 2, "batch_in_epoch": 3, "world_size": 1, "batch_size": cfg.batch_size}
    check_resume_settings(cfg, data, cfg, world_size=1)  # the same run: silent
    with pytest.raises(ValueError, match="checkpoint has ngf=8 but the config says 16"):
        check_resume_settings(cfg, data, cfg.replace(ngf=16), world_size=1)
    levels = cfg.image_size.bit_length() - 1
    check_resume_settings(cfg, data, cfg.replace(unet_depth=levels), world_size=1)  # None means the same levels
    with pytest.raises(ValueError, match=f"checkpoint has unet_levels={levels} but the config says {levels - 1}"):
        check_resume_settings(cfg, data, cfg.replace(unet_depth=levels - 1), world_size=1)
    with pytest.warns(RuntimeWarning, match=r"world_size=2 \(checkpoint: 1\)"):
        check_resume_settings(cfg, data, cfg, world_size=2)


def test_find_checkpoint_takes_the_newest_or_the_given_file(tmp_path):
    assert find_checkpoint(True, tmp_path) is None
    ckpt.save_training_checkpoint(tmp_path, {"format": ckpt.FORMAT, "step": 1}, keep=5)
    ckpt.save_training_checkpoint(tmp_path, {"format": ckpt.FORMAT, "step": 2}, keep=5)
    path, state = find_checkpoint(True, tmp_path)
    assert state["step"] == 2
    path, state = find_checkpoint(str(tmp_path / ckpt.step_checkpoint_name(1)), tmp_path)
    assert path.name == ckpt.step_checkpoint_name(1) and state["step"] == 1


# ---- samples, frozen parameters, stop signals, the CLI shim ------------------------------------
def test_fixed_sample_batch_prefers_the_validation_set_and_keeps_the_training_epoch():
    class Set(list):
        epoch = None

        def set_epoch(self, epoch):
            self.epoch = epoch

    item = lambda v: {"image": torch.full((3, 2, 2), v), "mask": torch.zeros(1, 2, 2)}  # noqa: E731
    train, val = Set(item(float(i)) for i in range(3)), Set(item(-1.0) for _ in range(2))
    batch = fixed_sample_batch(train, val, rows=4, epoch=5)
    assert batch["image"].shape == (2, 3, 2, 2) and batch["image"].max() == -1 and val.epoch == 0
    batch = fixed_sample_batch(train, Set(), rows=2, epoch=5)
    assert batch["image"][:, 0, 0, 0].tolist() == [0.0, 1.0] and train.epoch == 5


def test_frozen_turns_gradients_off_inside_and_restores_each_flag():
    net = nn.Linear(2, 2)
    net.bias.requires_grad_(False)
    with frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert (net.weight.requires_grad, net.bias.requires_grad) == (True, False)


def test_stop_signals_call_back_once_then_the_old_handler_is_back():
    seen = []
    before = signal.getsignal(signal.SIGTERM)
    restore = catch_stop_signals(seen.append)
    assert signal.getsignal(signal.SIGTERM) is not before
    os.kill(os.getpid(), signal.SIGTERM)
    assert seen == ["SIGTERM"] and signal.getsignal(signal.SIGTERM) is before
    restore()  # a second call does nothing
    assert signal.getsignal(signal.SIGTERM) is before


def test_every_command_is_csa_lib_cli_name_and_a_console_script():
    """One convention: `python -m csa_lib.cli.<name>` and `csa-<name>` run the same `main`."""
    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"csa-train", "csa-evaluate", "csa-inpaint", "csa-demo"}
    for script, target in scripts.items():
        module, _, name = target.partition(":")
        assert module == "csa_lib.cli." + script.removeprefix("csa-") and name == "main", target
        assert callable(importlib.import_module(module).main)


