"""Trainer: learning on a toy set, exact kill-and-resume, truncated-checkpoint fallback, LR schedule, CLI."""
from __future__ import annotations

import csv
import dataclasses
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from csa_lib.engine import checkpoint as ckpt
from csa_lib.engine import run_lock
from csa_lib.config import Config
from csa_lib.data import InpaintingDataset
from csa_lib.synthetic import SyntheticImages
from csa_lib.engine.divergence import TrainingDiverged
from csa_lib.masks import MaskSource
from csa_lib.train import Trainer, lr_factor
from csa_lib.cli.train import build_parser, config_flag, config_from_args, main as train_main
from conftest import Payload, damage_tensor

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:VGG16Features\\(weights=None\\)")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------
# (a) it learns
# --------------------------------------------------------------------------------------------
@pytest.mark.slow  # 50 training steps
def test_smoke_training_lowers_l1_and_writes_logs_samples_checkpoints(tmp_path):
    cfg = Config.smoke(image_size=64, ngf=8, ndf=8, batch_size=2, max_steps=50, data_root="synthetic",
                       checkpoints_dir=str(tmp_path / "run"), log_every=1, sample_every=25, save_every=25,
                       keep_checkpoints=1, seed=0)
    trainer = Trainer(cfg)
    history = trainer.fit()
    l1 = [row["l1_refined"] + row["l1_coarse"] for row in history]
    assert len(l1) == 50
    first, last = sum(l1[:5]) / 5, sum(l1[-5:]) / 5
    assert last < 0.85 * first, (first, last)
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in history)

    run = Path(cfg.checkpoints_dir)
    rows = _read_csv(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 51))
    assert float(rows[-1]["l1_refined"]) == pytest.approx(history[-1]["l1_refined"], rel=1e-6)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_00000025.png", "step_00000050.png"]
    assert sorted(p.name for p in run.glob("*.pt")) == ["last.pt", "step_00000050.pt"]
    state = ckpt.load_checkpoint(run / "last.pt")
    assert state["step"] == 50 and set(state["optimizers"]) == set(state["schedulers"]) == {
        "refine_net", "coarse_net", "patch_disc", "feature_disc"}
    assert state["config"] == cfg.to_dict() and len(state["history"]) == 50
    assert {"python", "numpy", "torch", "data"} <= set(state["rng"])


def test_log_rows_average_log_every_steps(tiny_cfg):
    cfg = tiny_cfg.replace(batch_size=1, max_steps=4, log_every=2, sample_every=0, save_every=0)
    trainer = Trainer(cfg)
    trainer.setup_data()
    trainer.sampler.set_epoch(0)
    per_step = []
    for batch in trainer.loader:  # the same 4 batches fit() will see, on a throw-away copy of the nets
        per_step.append(batch)
        if len(per_step) == 4:
            break
    reference = Trainer(cfg)
    logs = [reference.train_step(b) for b in per_step]
    history = trainer.fit()
    assert [r["step"] for r in history] == [2, 4]
    for row, pair in zip(history, (logs[:2], logs[2:])):
        assert row["l1_refined"] == pytest.approx((pair[0]["l1_refined"] + pair[1]["l1_refined"]) / 2, rel=1e-6)


# --------------------------------------------------------------------------------------------
# (b) kill and resume == uninterrupted
# --------------------------------------------------------------------------------------------
N_STEPS = 9  # 3 epochs of 3 steps (5 images, batch 2: the last batch of each epoch has 1 image)


def _resume_cfg(run_dir: Path) -> Config:
    return Config.smoke(image_size=64, ngf=4, ndf=4, batch_size=2, max_steps=N_STEPS, mask_type="random",
                        niter=1, niter_decay=4,  # the LR changes every epoch
                        checkpoints_dir=str(run_dir), log_every=1, sample_every=0, save_every=2, seed=3)


def _tiny_datasets(cfg: Config) -> tuple[InpaintingDataset, InpaintingDataset]:
    train = InpaintingDataset(SyntheticImages(5, cfg.image_size, seed=cfg.seed),
                              MaskSource("random", cfg.image_size, seed=cfg.seed))
    val = InpaintingDataset(SyntheticImages(2, cfg.image_size, seed=cfg.seed + 1),
                            MaskSource("random", cfg.image_size, seed=cfg.seed + 1))
    return train, val


class Crash(Exception):
    pass


class CrashAt:
    """Callback that raises at a given step, like a killed process."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, logs):
        if trainer.step == self.step:
            raise Crash(f"simulated crash at step {self.step}")


def _all_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("generator", "patch_disc", "feature_disc"):
        for k, v in getattr(trainer, name).state_dict().items():
            out[f"{name}.{k}"] = v
    for name, opt in trainer.optimizers.items():
        for i, s in opt.state_dict()["state"].items():
            for k, v in s.items():
                out[f"opt.{name}.{i}.{k}"] = v
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    cfg = _resume_cfg(run)
    trainer = Trainer(cfg, datasets=_tiny_datasets(cfg))
    trainer.fit()
    return trainer


_CRASH_STEP = random.Random(5).randint(1, N_STEPS - 1)  # a random step (5: mid-epoch, replays one step)


@pytest.mark.slow  # three training runs of up to 9 steps
@pytest.mark.parametrize("crash_step", [_CRASH_STEP, 6], ids=["random", "epoch_end"])
def test_kill_and_resume_gives_identical_weights(tmp_path, uninterrupted, crash_step):
    cfg = _resume_cfg(tmp_path / "run")
    with pytest.raises(Crash):
        Trainer(cfg, [CrashAt(crash_step)], datasets=_tiny_datasets(cfg)).fit()
    resumed = Trainer(cfg, resume=True, datasets=_tiny_datasets(cfg))
    assert resumed.step == crash_step - crash_step % cfg.save_every  # the newest checkpoint <= the crash
    resumed.fit()

    assert (resumed.step, resumed.epoch) == (uninterrupted.step, uninterrupted.epoch) == (N_STEPS, 2)
    expected, got = _all_state(uninterrupted), _all_state(resumed)
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, different[:5]
    for name, sched in uninterrupted.schedulers.items():
        assert resumed.schedulers[name].state_dict()["last_epoch"] == sched.state_dict()["last_epoch"]
        assert resumed.optimizers[name].param_groups[0]["lr"] == sched.get_last_lr()[0]
    assert resumed.history == uninterrupted.history
    rows = _read_csv(Path(cfg.checkpoints_dir) / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, N_STEPS + 1))  # no duplicated rows after resume


@pytest.mark.slow  # three training runs of up to 9 steps
def test_resume_without_skipping_would_differ(tmp_path, uninterrupted):
    """Control: losing the position inside the epoch changes the result (so the test above can fail)."""
    cfg = _resume_cfg(tmp_path / "run")
    with pytest.raises(Crash):
        Trainer(cfg, [CrashAt(4)], datasets=_tiny_datasets(cfg)).fit()
    resumed = Trainer(cfg, resume=True, datasets=_tiny_datasets(cfg))
    resumed.batch_in_epoch = 0  # as if the data order restarted at the beginning of the epoch
    resumed.fit()
    expected, got = _all_state(uninterrupted), _all_state(resumed)
    assert any(not torch.equal(expected[k], got[k]) for k in expected)


# --------------------------------------------------------------------------------------------
# (c) truncated newest checkpoint
# --------------------------------------------------------------------------------------------
@pytest.mark.slow  # two training runs
def test_resume_skips_truncated_newest_checkpoint(tmp_path):
    cfg = _resume_cfg(tmp_path / "run").replace(max_steps=4)
    Trainer(cfg, datasets=_tiny_datasets(cfg)).fit()  # writes step 2, step 4 and last.pt
    run = Path(cfg.checkpoints_dir)
    step4 = run / ckpt.step_checkpoint_name(4)
    newer = run / ckpt.step_checkpoint_name(6)
    newer.write_bytes(step4.read_bytes()[: step4.stat().st_size // 2])  # a newer, truncated file

    with pytest.warns(RuntimeWarning, match=newer.name):
        assert ckpt.latest_checkpoint(run) == step4
    with pytest.warns(RuntimeWarning, match=newer.name):
        resumed = Trainer(cfg.replace(max_steps=5), resume=True, datasets=_tiny_datasets(cfg))
    assert resumed.step == 4 and resumed.resumed_from == step4

    newer.unlink()
    with open(step4, "r+b") as f:  # now the newest file itself (and last.pt, its hard link) is cut short
        f.truncate(step4.stat().st_size // 3)
    with pytest.warns(RuntimeWarning, match=step4.name):
        resumed = Trainer(cfg, resume=True, datasets=_tiny_datasets(cfg))
    assert resumed.step == 2 and resumed.resumed_from.name == ckpt.step_checkpoint_name(2)


# --------------------------------------------------------------------------------------------
# (e) learning-rate schedule
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("epoch, expected", [
    (0, 1.0), (1, 1.0), (18, 1.0), (19, 1 - 1 / 101), (20, 1 - 2 / 101), (69, 1 - 51 / 101),
    (118, 1 - 100 / 101), (119, 0.0), (150, 0.0)])
def test_lr_factor_matches_the_original_formula(epoch, expected):
    assert lr_factor(epoch, niter=20, niter_decay=100) == pytest.approx(expected, abs=1e-12)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_trainer_schedulers_follow_lr_factor_per_epoch(tiny_cfg):
    cfg = tiny_cfg.replace(niter=3, niter_decay=4, lr=1e-3, beta1=0.3, beta2=0.9)
    trainer = Trainer(cfg)
    assert len(trainer.optimizers) == 4
    for opt in trainer.optimizers.values():
        assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["betas"] == (0.3, 0.9)
    for epoch in range(9):
        expected = 1e-3 * max(0.0, 1 - max(0, epoch + 2 - 3) / 5)
        for opt in trainer.optimizers.values():
            assert opt.param_groups[0]["lr"] == pytest.approx(expected, abs=1e-15), epoch
        for sched in trainer.schedulers.values():
            sched.step()


def test_train_step_handles_any_batch_size_and_updates_all_four_nets(tiny_cfg):
    trainer = Trainer(tiny_cfg)
    before = {n: [p.detach().clone() for p in getattr(trainer, n).parameters()]
              for n in ("generator", "patch_disc", "feature_disc")}
    for batch_size in (1, 3):
        image = torch.rand(batch_size, 3, 64, 64) * 2 - 1
        mask = torch.zeros(batch_size, 1, 64, 64)
        for b in range(batch_size):  # a different hole per sample
            mask[b, :, 8 + 8 * b: 40 + 4 * b, 16: 48 - 4 * b] = 1
        logs = trainer.train_step({"image": image, "mask": mask})
        assert {"l1_coarse", "l1_refined", "adv_image", "adv_feature", "consistency_csa", "consistency_decoder",
                "g_total", "d_image", "d_feature", "d_total", "lr"} <= set(logs)
        assert all(isinstance(v, float) for v in logs.values())
    for name, params in before.items():  # every conv weight of every net moved
        after = list(getattr(trainer, name).parameters())
        moved = [not torch.equal(a, b) for a, b in zip(params, after) if a.dim() == 4]
        assert moved and all(moved), name
    coarse = list(trainer.generator.coarse_net.parameters())
    assert all(p.grad is not None for p in coarse)
    assert all(p.requires_grad for n in ("patch_disc", "feature_disc") for p in getattr(trainer, n).parameters())


def test_sample_strip_and_loss_plot(tmp_path):
    from types import SimpleNamespace

    from csa_lib.notebook.viz import loss_plot, sample_strip, save_sample_strip

    image = torch.rand(3, 3, 16, 16) * 2 - 1
    mask = torch.zeros(3, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    out = SimpleNamespace(coarse=-image, refined=image * 0, composite=image * 0.5)
    strip = sample_strip(image, mask, out, max_rows=2)
    assert strip.shape == (3, 2 * 18 + 2, 5 * 18 + 2)  # 2 rows x 5 columns of 16 px, 2 px padding
    tile = lambda r, c: strip[:, 2 + 18 * r: 18 + 18 * r, 2 + 18 * c: 18 + 18 * c]  # noqa: E731
    assert torch.equal(tile(1, 4), image[1]) and torch.equal(tile(0, 1), -image[0])
    assert torch.all(tile(0, 0)[:, 4:12, 4:12] == 1) and torch.equal(tile(0, 0)[:, :4], image[0, :, :4])
    path = save_sample_strip(tmp_path / "a" / "s.png", image, mask, out)
    assert path.is_file() and path.stat().st_size > 0
    history = [{"step": s, "l1_coarse": 1 / s, "l1_refined": 2 / s, "g_total": 3.0, "d_total": 1.0}
               for s in range(1, 6)]
    fig = loss_plot(history)
    assert [ax.get_title() for ax in fig.axes] == ["reconstruction (L1)", "total"]
    assert [len(line.get_xdata()) for line in fig.axes[0].lines] == [5, 5]


# --------------------------------------------------------------------------------------------
# (f) command line
# --------------------------------------------------------------------------------------------
def test_every_config_field_has_a_cli_flag():
    parser = build_parser()
    flags = {s for action in parser._actions for s in action.option_strings}
    missing = [f.name for f in dataclasses.fields(Config) if config_flag(f.name) not in flags]
    assert not missing, f"Config fields without a CLI flag: {missing}"
    for extra in ("--smoke", "--resume", "--device", "--no-flip", "--no-amp", "--no-detach-coarse"):
        assert extra in flags


def test_cli_flags_convert_to_config_values():
    parser = build_parser()
    args = parser.parse_args(["--ngf", "4", "--no-flip", "--vgg-weights", "none", "--max-steps", "7",
                              "--lr", "0.001", "--mask-type", "random", "--mask-root", "masks/",
                              "--data-root", "synthetic", "--no-amp", "--checkpoints-dir", "runs/x"])
    cfg = config_from_args(args)
    assert (cfg.ngf, cfg.flip, cfg.vgg_weights, cfg.max_steps, cfg.lr, cfg.mask_type, cfg.mask_root,
            cfg.data_root, cfg.amp, cfg.checkpoints_dir) == (
        4, False, None, 7, 0.001, "random", "masks/", "synthetic", False, "runs/x")
    untouched = {f.name for f in dataclasses.fields(Config)} - {
        "ngf", "flip", "vgg_weights", "max_steps", "lr", "mask_type", "mask_root", "data_root", "amp",
        "checkpoints_dir"}
    assert all(getattr(cfg, n) == getattr(Config(), n) for n in untouched)
    smoke = config_from_args(parser.parse_args(["--smoke", "--batch-size", "3"]))
    assert smoke == Config.smoke(batch_size=3)
    with pytest.raises(SystemExit):
        parser.parse_args(["--mask-type", "square"])


@pytest.mark.slow  # two CLI subprocesses
def test_cli_smoke_run_and_resume(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2", "TQDM_DISABLE": "1"}
    run = tmp_path / "tmp"
    base = [sys.executable, "-m", "csa_lib.cli.train", "--checkpoints-dir", str(run)]
    done = subprocess.run(base + ["--smoke", "--max-steps", "2", "--data-root", "synthetic", "--device", "cpu"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ckpt.load_checkpoint(run / "last.pt")["step"] == 2
    assert [int(r["step"]) for r in _read_csv(run / "log.csv")] == [1, 2]
    # --resume takes the rest of the config from the checkpoint; only --max-steps changes
    done = subprocess.run(base + ["--resume", "--max-steps", "3"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = ckpt.load_checkpoint(run / "last.pt")
    assert state["step"] == 3 and state["config"]["image_size"] == Config.smoke().image_size
    assert [int(r["step"]) for r in _read_csv(run / "log.csv")] == [1, 2, 3]


def test_vgg_free_training_skips_vgg_and_the_feature_discriminator(tiny_cfg):
    from csa_lib.train import Trainer
    cfg = tiny_cfg.replace(use_vgg=False)
    trainer = Trainer(cfg, device="cpu")
    assert trainer.vgg is None
    before = [p.detach().clone() for p in trainer.feature_disc.parameters()]
    g_before = [p.detach().clone() for p in trainer.generator.refine_net.parameters()]
    batch = {"image": torch.rand(2, 3, 64, 64) * 2 - 1, "mask": torch.zeros(2, 1, 64, 64)}
    batch["mask"][..., 16:48, 16:48] = 1
    logs = trainer.train_step(batch)
    assert logs["adv_feature"] == 0 and logs["consistency_csa"] == 0 and logs["d_feature"] == 0
    assert logs["adv_image"] > 0 and logs["l1_refined"] > 0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.feature_disc.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, trainer.generator.refine_net.parameters()))


def test_init_generator_starts_from_trained_weights_and_checks_the_shape(tmp_path, tiny_cfg):
    vgg_free = tiny_cfg.replace(use_vgg=False)
    first = Trainer(vgg_free.replace(seed=1, checkpoints_dir=str(tmp_path / "a")), device="cpu")
    first.save()
    source = tmp_path / "a" / "last.pt"
    cfg = vgg_free.replace(seed=2, checkpoints_dir=str(tmp_path / "b"), init_generator=str(source))
    plain = Trainer(cfg.replace(init_generator=None), device="cpu")
    tuned = Trainer(cfg, device="cpu")
    theirs, fresh, ours = (t.generator.state_dict() for t in (first, plain, tuned))
    assert all(torch.equal(theirs[k], ours[k]) for k in theirs)
    assert any(not torch.equal(fresh[k], ours[k]) for k in fresh)  # seed 2 alone would give other weights
    with pytest.raises(ValueError, match="ngf=4.*ngf=8"):
        Trainer(cfg.replace(ngf=8), device="cpu")
    bigger = cfg.replace(image_size=2 * cfg.image_size)
    with pytest.raises(ValueError, match=f"--unet-depth {first.generator.depth}"):
        Trainer(bigger, device="cpu")
    at_twice = Trainer(bigger.replace(unet_depth=first.generator.depth), device="cpu")  # same weights, larger crops
    assert all(torch.equal(theirs[k], v) for k, v in at_twice.generator.state_dict().items())
    with pytest.raises(ValueError, match="unet_depth must be between 4"):
        cfg.replace(unet_depth=cfg.image_size.bit_length())


# --------------------------------------------------------------------------------------------
# stopping and saving on time
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("minutes, saved", [(2.5, [4, 6]), (0.0, [6])])
def test_time_based_saves_follow_save_every_minutes(tmp_path, monkeypatch, minutes, saved):
    import csa_lib.train as train_module
    clock = [0.0]  # a fake monotonic clock: each step takes one minute
    monkeypatch.setattr(train_module.time, "monotonic", lambda: clock[0])
    cfg = Config.smoke(image_size=64, ngf=4, ndf=4, batch_size=1, max_steps=6, data_root="synthetic",
                       checkpoints_dir=str(tmp_path / "run"), sample_every=0, save_every=0,
                       save_every_minutes=minutes, keep_checkpoints=10)

    def one_minute(trainer, logs):
        clock[0] += 60.0

    Trainer(cfg, [one_minute]).fit()
    # checks at 0, 1, 2, 3 min: the 4th step is the first 2.5 minutes after the start; then only the end
    steps = sorted(int(p.stem.split("_")[1]) for p in (tmp_path / "run").glob("step_*.pt"))
    assert steps == saved


def test_sigint_inside_fit_saves_and_returns(tmp_path):
    import signal
    cfg = Config.smoke(image_size=64, ngf=4, ndf=4, batch_size=1, max_steps=50, data_root="synthetic",
                       checkpoints_dir=str(tmp_path / "run"), sample_every=0, save_every=0, save_every_minutes=0)
    before = signal.getsignal(signal.SIGINT)

    def interrupt_at_3(trainer, logs):
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does (or Jupyter's interrupt button)

    trainer = Trainer(cfg, [interrupt_at_3])
    trainer.fit()
    assert trainer.stopped_by == "SIGINT" and trainer.step in (3, 4)  # the handler may run one step later
    assert ckpt.load_checkpoint(tmp_path / "run" / "last.pt")["step"] == trainer.step
    assert signal.getsignal(signal.SIGINT) is before  # the usual handler is back after fit()


# --------------------------------------------------------------------------------------------
# safety: unsafe and damaged checkpoints, one writer per run folder, nothing to resume
# --------------------------------------------------------------------------------------------
def test_resume_skips_a_damaged_or_unsafe_newest_checkpoint(tmp_path):
    cfg = _resume_cfg(tmp_path / "run").replace(max_steps=4)
    Trainer(cfg, datasets=_tiny_datasets(cfg)).fit()  # step 2, step 4 (= last.pt)
    run = Path(cfg.checkpoints_dir)
    step4 = run / ckpt.step_checkpoint_name(4)
    generator = torch.load(step4, weights_only=True)["generator"]
    name = max(generator, key=lambda k: generator[k].numel())  # random values: its bytes occur once
    damage_tensor(step4, generator[name])  # a CRC error: torch.load alone would return the 1e30
    with pytest.warns(RuntimeWarning, match=rf"{step4.name} is damaged"):
        resumed = Trainer(cfg, resume=True, datasets=_tiny_datasets(cfg))
    assert resumed.step == 2 and resumed.resumed_from.name == ckpt.step_checkpoint_name(2)
    assert float(resumed.generator.state_dict()[name].abs().max()) < 1e3

    marker = tmp_path / "ran.txt"
    state = torch.load(run / ckpt.step_checkpoint_name(2), weights_only=True)
    torch.save(dict(state, step=6, extra=Payload(marker)), run / ckpt.step_checkpoint_name(6))
    with pytest.warns(RuntimeWarning, match=r"step_00000006.pt holds objects that cannot be loaded safely"):
        resumed = Trainer(cfg, resume=True, datasets=_tiny_datasets(cfg))
    assert resumed.step == 2 and not marker.exists()


def test_init_generator_refuses_a_payload(tmp_path):
    from csa_lib.engine.checkpoint import UnsafeCheckpointError
    from csa_lib.model import build_models

    marker = tmp_path / "ran.txt"
    cfg = Config.smoke(image_size=64, ngf=4, ndf=4, use_vgg=False, checkpoints_dir=str(tmp_path / "b"))
    generator = build_models(cfg)[0]
    source = tmp_path / "a" / "last.pt"  # a run folder's last.pt, real weights and a payload beside them
    source.parent.mkdir()
    torch.save({"format": ckpt.FORMAT, "config": cfg.to_dict(), "step": 1, "generator": generator.state_dict(),
                "extra": Payload(marker)}, source)
    with pytest.raises(UnsafeCheckpointError, match="last.pt holds objects that cannot be loaded safely"):
        Trainer(cfg.replace(init_generator=str(source.parent)), device="cpu")
    assert not marker.exists()


def test_a_second_trainer_on_the_same_folder_refuses(tmp_path):
    cfg = _resume_cfg(tmp_path / "run").replace(max_steps=2, save_every=0)
    run = Path(cfg.checkpoints_dir)
    run.mkdir()
    stale = run / ".step_00000008.pt.x1y2z3.tmp"  # what a killed save leaves
    stale.write_bytes(b"half a checkpoint")
    refused = []

    class SecondTrainer:
        def on_step_end(self, trainer, logs):
            if trainer.step == 1:
                other = Trainer(cfg, datasets=_tiny_datasets(cfg))
                with pytest.raises(run_lock.RunLockedError, match=rf"{run.name} is in use by another trainer"):
                    other.fit()
                with pytest.raises(run_lock.RunLockedError):
                    other.save()
                refused.append(other.step)

    first = Trainer(cfg, [SecondTrainer()], datasets=_tiny_datasets(cfg))
    first.fit()
    assert refused == [0] and first.step == 2
    assert not stale.exists() and not (run / run_lock.LOCK_NAME).exists()  # removed at start; released at the end
    assert ckpt.load_checkpoint(run / ckpt.LAST_NAME)["step"] == 2
    Trainer(cfg.replace(max_steps=3), resume=True, datasets=_tiny_datasets(cfg)).fit()  # the folder is free again


def test_cli_resume_falls_back_and_refuses_an_empty_folder(tmp_path, monkeypatch, capsys):
    from csa_lib.cli.train import main

    monkeypatch.setenv("TQDM_DISABLE", "1")
    run = tmp_path / "run"
    common = ["--checkpoints-dir", str(run), "--device", "cpu"]
    assert main(["--smoke", "--max-steps", "2", "--save-every", "1", "--data-root", "synthetic",
                 "--ngf", "4", "--ndf", "4", "--no-use-vgg", *common]) == 0
    (run / ckpt.step_checkpoint_name(5)).write_bytes(b"")  # newer, but empty
    torch.save({"format": ckpt.FORMAT, "extra": Payload(tmp_path / "ran.txt")}, run / ckpt.step_checkpoint_name(6))
    with pytest.warns(RuntimeWarning) as caught:
        assert main(["--resume", "--max-steps", "3", *common]) == 0
    skipped = " ".join(str(w.message) for w in caught)
    assert "step_00000006.pt holds objects that cannot be loaded safely" in skipped
    assert "step_00000005.pt is empty (0 bytes)" in skipped
    assert ckpt.load_checkpoint(run / ckpt.LAST_NAME)["step"] == 3 and not (tmp_path / "ran.txt").exists()

    # user errors: one line on stderr and exit status 2 (csa_lib.cli.conventions)
    capsys.readouterr()
    assert main(["--resume", "--checkpoints-dir", str(tmp_path / "rnu")]) == 2
    assert re.search(r"nothing to resume: .*rnu does not exist; run folders nearby: .*run", capsys.readouterr().err)
    (tmp_path / "empty").mkdir()
    assert main(["--resume", "--checkpoints-dir", str(tmp_path / "empty")]) == 2
    assert "empty holds no checkpoint" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == []  # no fresh run started there


def test_cli_resume_reads_the_checkpoint_once(tmp_path, monkeypatch):
    """--resume reads the newest checkpoint for its config and hands the same state to the Trainer."""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    common = ["--checkpoints-dir", str(tmp_path / "run"), "--device", "cpu"]
    assert train_main(["--smoke", "--max-steps", "1", "--data-root", "synthetic", "--ngf", "4", "--ndf", "4",
                 "--no-use-vgg", *common]) == 0
    read, load = [], ckpt.load_checkpoint
    monkeypatch.setattr(ckpt, "load_checkpoint", lambda path, *a, **kw: read.append(Path(path).name) or load(path, *a, **kw))
    assert train_main(["--resume", "--max-steps", "2", *common]) == 0
    assert read == [ckpt.step_checkpoint_name(1)]
    assert ckpt.load_checkpoint(tmp_path / "run" / ckpt.LAST_NAME)["step"] == 2


# --------------------------------------------------------------------------------------------
# a diverging run stops with one line and keeps its last good checkpoint
# --------------------------------------------------------------------------------------------
def test_a_huge_learning_rate_stops_training_naming_the_lr(tmp_path):
    cfg = Config.smoke(data_root="synthetic", checkpoints_dir=str(tmp_path / "run"), lr=1e4, max_steps=300,
                       sample_every=0)
    trainer = Trainer(cfg, device="cpu")
    with pytest.raises(TrainingDiverged, match=r"^training diverged at step \d+: .*; lower --lr \(Config.lr, "
                                               r"now 10000\); no checkpoint was written$"):
        trainer.fit()
    assert trainer.step <= 300 and not list((tmp_path / "run").glob("*.pt"))
    with pytest.raises(TrainingDiverged, match="training diverged at step"):  # nor by hand, though still finite
        trainer.save()
    assert not list((tmp_path / "run").glob("*.pt"))
    trainer.close()


def test_a_diverged_step_keeps_the_last_good_checkpoint(tmp_path):
    """Step 2 is saved; its weights are then poisoned, step 3's losses are NaN: nothing past step 2 is written."""
    run = tmp_path / "run"

    def poison_after_the_save(trainer: Trainer, logs: dict[str, float]) -> None:
        if trainer.step == 2:
            with torch.no_grad():
                next(trainer.generator.refine_net.parameters()).fill_(float("nan"))

    cfg = Config.smoke(data_root="synthetic", checkpoints_dir=str(run), max_steps=6, sample_every=0, save_every=2)
    trainer = Trainer(cfg, [poison_after_the_save], device="cpu")
    saved = (run / "last.pt")
    with pytest.raises(TrainingDiverged, match=rf"at step 3: \w+ is nan \(non-finite loss\); lower --lr "
                                               rf"\(Config.lr, now 0.0002\); the last good checkpoint "
                                               rf"{re.escape(str(saved))} is kept"):
        trainer.fit()
    trainer.close()
    good = saved.read_bytes()
    state = ckpt.load_checkpoint(saved)
    assert state["step"] == 2 and sorted(p.name for p in run.glob("*.pt")) == ["last.pt", "step_00000002.pt"]
    assert all(torch.isfinite(v).all() for v in state["generator"].values() if v.is_floating_point())
    trainer.diverged = None  # even when the trainer is told to forget it, NaN weights are never saved
    with pytest.raises(TrainingDiverged, match="at step 3: generator, .*hold NaN or infinite weights"):
        trainer.save()
    assert saved.read_bytes() == good


def test_a_normal_run_never_trips_the_guard(tiny_cfg):
    """The guard sees every step of an ordinary run (noisy GAN terms included) and lets it finish."""
    cfg = tiny_cfg.replace(max_steps=12, sample_every=0, save_every=0)
    trainer = Trainer(cfg, device="cpu")
    trainer.fit()
    trainer.close()
    assert trainer.step == 12 and trainer.loss_guard is not None and len(trainer.loss_guard.recent["g_total"]) == 12
