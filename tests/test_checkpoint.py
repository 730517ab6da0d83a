"""Checkpoint files: atomic saves, truncation / corruption detection, fallback, retention, fp16 export."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from csa_lib.engine import checkpoint as ckpt
from csa_lib.config import Config
from conftest import Payload, damage_tensor


def _state(step: int, seed: int = 0) -> dict:
    """A small checkpoint-shaped dict whose tensors depend on (step, seed)."""
    g = torch.Generator().manual_seed(seed * 1000 + step)
    return {"format": ckpt.FORMAT, "config": Config.smoke().to_dict(), "step": step, "epoch": step // 3,
            "generator": {"w": torch.randn(64, 32, generator=g), "b": torch.randn(32, generator=g),
                          "n": torch.tensor(step)},
            "history": [{"step": float(s), "l1_refined": 1.0 / (s + 1)} for s in range(step)]}


def _assert_same(a: dict, b: dict) -> None:
    assert a["step"] == b["step"] and a["history"] == b["history"] and a["config"] == b["config"]
    assert a["generator"].keys() == b["generator"].keys()
    for k in a["generator"]:
        assert torch.equal(a["generator"][k], b["generator"][k]), k


def _truncate_copy(src: Path, dst: Path, fraction: float = 0.5) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


def test_round_trip_and_format(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "a.pt", _state(5))
    _assert_same(ckpt.load_checkpoint(path), _state(5))
    assert ckpt.verify_checkpoint(path)
    assert sorted(os.listdir(tmp_path)) == ["a.pt"]  # no temp file left behind


def test_truncated_and_foreign_files_raise_checkpoint_error_naming_the_file(tmp_path):
    good = ckpt.save_checkpoint(tmp_path / "good.pt", _state(3))
    for fraction in (0.9, 0.5, 0.05):
        bad = tmp_path / f"bad_{fraction}.pt"
        _truncate_copy(good, bad, fraction)
        assert not ckpt.verify_checkpoint(bad)
        with pytest.raises(ckpt.CheckpointError, match=bad.name):
            ckpt.load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"netG": torch.zeros(2)}, foreign)  # e.g. a file of the original code
    with pytest.raises(ckpt.CheckpointError, match="not a csa-inpainting checkpoint"):
        ckpt.load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_bit_flip_inside_the_archive_is_detected(tmp_path):
    good = ckpt.save_checkpoint(tmp_path / "good.pt", _state(4))
    data = bytearray(good.read_bytes())
    # flip bytes in the middle of the largest tensor record (the zip CRC no longer matches)
    start = data.find(b"archive/data/")
    middle = start + (len(data) - start) // 3
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    bad = tmp_path / "step_00000009.pt"
    bad.write_bytes(bytes(data))
    assert not ckpt.verify_checkpoint(bad)


def test_atomic_save_keeps_old_file_when_torch_save_fails(tmp_path, monkeypatch):
    path = ckpt.save_checkpoint(tmp_path / "last.pt", _state(2))
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)  # write a full payload into the temp file ...
        f.seek(0)
        f.truncate(100)  # ... keep only its start ...
        raise OSError("disk full")  # ... and fail, as a crash mid-write would

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(path, _state(7))
    monkeypatch.undo()
    _assert_same(ckpt.load_checkpoint(path), _state(2))  # the old checkpoint is intact
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]  # and no temp file is left


def test_latest_checkpoint_skips_a_truncated_newest_one(tmp_path):
    first = ckpt.save_checkpoint(tmp_path / ckpt.step_checkpoint_name(2), _state(2))
    newer = tmp_path / ckpt.step_checkpoint_name(4)
    _truncate_copy(ckpt.save_checkpoint(tmp_path / "tmp_full.pt", _state(4)), newer)
    (tmp_path / "tmp_full.pt").unlink()
    with pytest.warns(RuntimeWarning, match=newer.name):
        assert ckpt.latest_checkpoint(tmp_path) == first
    with pytest.warns(RuntimeWarning, match=newer.name):
        path, state = ckpt.load_latest(tmp_path)
    assert path == first
    _assert_same(state, _state(2))
    assert ckpt.latest_checkpoint(tmp_path / "nothing_here") is None


def test_checkpoints_are_ordered_by_step_not_by_name_length(tmp_path):
    for step in (9, 10, 100):
        ckpt.save_checkpoint(tmp_path / f"step_{step}.pt", _state(step))
    assert ckpt.latest_checkpoint(tmp_path).name == "step_100.pt"


def test_retention_keeps_the_newest_and_last_pt(tmp_path):
    for step in range(1, 6):
        ckpt.save_training_checkpoint(tmp_path, _state(step), keep=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [ckpt.LAST_NAME, ckpt.step_checkpoint_name(4), ckpt.step_checkpoint_name(5)]
    _assert_same(ckpt.load_checkpoint(tmp_path / ckpt.LAST_NAME), _state(5))
    _assert_same(ckpt.load_checkpoint(tmp_path / ckpt.step_checkpoint_name(4)), _state(4))
    ckpt.save_training_checkpoint(tmp_path / "only_last", _state(6), keep=0)
    assert sorted(p.name for p in (tmp_path / "only_last").iterdir()) == [ckpt.LAST_NAME]


def test_last_pt_falls_back_when_link_fails(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError("links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    ckpt.save_training_checkpoint(tmp_path, _state(3), keep=1)
    _assert_same(ckpt.load_checkpoint(tmp_path / ckpt.LAST_NAME), _state(3))
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_export_generator_is_fp16_and_loads_as_a_model(tmp_path):
    from csa_lib.inference import generator_from_checkpoint
    from csa_lib.model import build_models

    cfg = Config.smoke(image_size=32, ngf=4, ndf=4)
    generator, patch_disc, _ = build_models(cfg)
    full = {"format": ckpt.FORMAT, "config": cfg.to_dict(), "step": 11, "epoch": 1,
            "generator": generator.state_dict(), "patch_disc": patch_disc.state_dict(),
            "optimizers": {}, "history": []}
    src = ckpt.save_checkpoint(tmp_path / "full.pt", full)
    out = ckpt.export_generator(src, tmp_path / "demo.pt")
    small = ckpt.load_checkpoint(out)
    assert set(small) == {"format", "config", "step", "generator"} and small["step"] == 11
    assert all(v.dtype == torch.float16 for v in small["generator"].values() if v.is_floating_point())
    assert out.stat().st_size < 0.6 * src.stat().st_size
    model = generator_from_checkpoint(small)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, generator.state_dict()[k], atol=1e-3, rtol=1e-3)
    full32 = ckpt.load_checkpoint(ckpt.export_generator(src, tmp_path / "demo32.pt", half=False))
    assert all(torch.equal(v, generator.state_dict()[k]) for k, v in full32["generator"].items())


# --- safe loading: weights_only, integrity, what a bad file is --------------------------------------
def test_a_payload_is_refused_naming_the_file_and_never_runs(tmp_path):
    marker = tmp_path / "ran.txt"
    hidden = dict(_state(3), extra=Payload(marker))  # real weights with a payload beside them
    torch.save(hidden, tmp_path / "hidden.pt")
    torch.save(Payload(marker), tmp_path / "plain.pt")
    for name in ("hidden.pt", "plain.pt"):
        with pytest.raises(ckpt.UnsafeCheckpointError, match=rf"{name} holds objects that cannot be loaded safely"):
            ckpt.read_torch_file(tmp_path / name)
        with pytest.raises(ckpt.CheckpointError, match="cannot be loaded safely"):
            ckpt.load_checkpoint(tmp_path / name)
    assert not marker.exists()


def test_damaged_tensor_bytes_never_load(tmp_path):
    state = _state(4)
    path = ckpt.save_checkpoint(tmp_path / "step_00000004.pt", state)
    damage_tensor(path, state["generator"]["b"])
    with pytest.raises(ckpt.CheckpointError, match=r"step_00000004.pt is damaged: .* fails its CRC check"):
        ckpt.load_checkpoint(path)
    assert not ckpt.verify_checkpoint(path)


def test_empty_and_foreign_files_say_what_they_are(tmp_path):
    from PIL import Image

    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "notes.pt").write_text("these are not weights\n")
    (tmp_path / "page.pt").write_text("<!DOCTYPE html><html><body>Not found</body></html>")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.pt", format="PNG")
    expected = {"empty.pt": r"empty \(0 bytes\)", "notes.pt": "it is a text file", "page.pt": "an HTML page",
                "photo.pt": "it is a PNG image"}
    for name, what in expected.items():
        with pytest.raises(ckpt.CheckpointError, match=rf"{name} .*{what}"):
            ckpt.load_checkpoint(tmp_path / name)


def test_legacy_torch_files_still_load(tmp_path):
    path = tmp_path / "old_net_G.pth"
    torch.save({"w": torch.arange(3.0)}, path, _use_new_zipfile_serialization=False)  # the original's format
    assert torch.equal(ckpt.read_torch_file(path)["w"], torch.arange(3.0))


def test_full_disk_gives_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno
    import io

    ckpt.save_training_checkpoint(tmp_path, _state(2), keep=3)
    real_save = torch.save

    class FullDisk(io.RawIOBase):  # accepts 1 kB, then the device is full, as a real write would fail
        def __init__(self, f):
            self.f, self.written = f, 0

        def writable(self):
            return True

        def write(self, b):
            if self.written > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(b)
            return self.f.write(b)

    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: real_save(obj, FullDisk(f), *a, **k))
    with pytest.raises(ckpt.DiskFullError, match=r"no space left on the device while saving .*step_00000004.pt"):
        ckpt.save_training_checkpoint(tmp_path, _state(4), keep=3)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.LAST_NAME, ckpt.step_checkpoint_name(2)]
    _assert_same(ckpt.load_checkpoint(tmp_path / ckpt.LAST_NAME), _state(2))


def test_stale_temp_files_are_found_and_removed(tmp_path):
    ckpt.save_checkpoint(tmp_path / "step_00000002.pt", _state(2))
    stale = [tmp_path / ".step_00000004.pt.k3j2_x.tmp", tmp_path / ".last.pt.4242.tmp"]
    for p in stale:
        p.write_bytes(b"half a checkpoint")
    keep = tmp_path / "notes.tmp"  # not one of ours: no leading dot
    keep.write_text("mine")
    assert sorted(ckpt.remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "step_00000002.pt"]


def test_nothing_to_resume_names_the_folder_and_the_runs_nearby(tmp_path):
    ckpt.save_checkpoint(tmp_path / "run_a" / ckpt.LAST_NAME, _state(2))
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(ckpt.NothingToResumeError, match=r"run_b does not exist; run folders nearby: .*run_a"):
        ckpt.resume_point(tmp_path / "run_b")
    with pytest.raises(FileNotFoundError, match=r"empty_run holds no checkpoint"):
        ckpt.resume_point(tmp_path / "empty_run")
    with pytest.raises(FileNotFoundError, match="run folders nearby: .*run_a"):
        ckpt.resume_point(tmp_path)  # the parent of the runs
    path, state = ckpt.resume_point(tmp_path / "run_a")
    assert path.name == ckpt.LAST_NAME and state["step"] == 2


def test_checkpoint_listing_and_stale_cleanup_share_one_folder_scan(tmp_path, monkeypatch):
    """checkpoint_candidates and remove_stale_temp_files both list their files with `_named_files`."""
    for name in ("step_00000010.pt", "step_00000002.pt", ckpt.LAST_NAME, ".last.pt.1.tmp", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "step_00000099.pt").mkdir()  # a folder with a checkpoint's name is not a checkpoint
    scanned: list[str] = []
    real = ckpt._named_files
    monkeypatch.setattr(ckpt, "_named_files", lambda d, pattern: scanned.append(pattern.pattern) or real(d, pattern))
    assert [p.name for p in ckpt.checkpoint_candidates(tmp_path)] == ["step_00000010.pt", "step_00000002.pt", ckpt.LAST_NAME]
    assert [p.name for p in ckpt.remove_stale_temp_files(tmp_path)] == [".last.pt.1.tmp"]
    assert scanned == [ckpt._STEP_RE.pattern, ckpt._TEMP_RE.pattern]
    assert ckpt.checkpoint_candidates(tmp_path / "missing") == [] == ckpt.remove_stale_temp_files(tmp_path / "missing")
