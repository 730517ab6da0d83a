"""Checkpoint files: atomic saves, corruption checks, retention and small fp16 generator exports.

A training checkpoint is one `torch.save` dict (docs/INTERFACES.md):
`format` ("csa-inpainting/1"), `config` (Config.to_dict()), `step`, `epoch`, `generator`,
`patch_disc`, `feature_disc` (state dicts), `optimizers` and `schedulers` (dicts of 4 state dicts),
`rng` (python, numpy, torch cpu/cuda generators and the data-order position), `history`
(list of averaged loss rows). The trainer also stores `scalers` (AMP) and `log_state`.

Step checkpoints are `step_00001000.pt`; `last.pt` always holds the newest one (a hard link
when the file system allows it, else a copy). Every file is written to a temporary name in the
same folder, fsync'ed and renamed over the target, so a crash mid-save never leaves a
half-written checkpoint under a real name.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "csa-inpainting/1"
LAST_NAME = "last.pt"
_STEP_RE = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """A checkpoint file is truncated, corrupt or not a csa-inpainting checkpoint."""


def step_checkpoint_name(step: int) -> str:
    """File name of the checkpoint written after `step` optimisation steps."""
    return f"step_{step:08d}.pt"


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: not every OS can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write `state` to `path`: temp file in the same folder, flush + fsync, os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def _link_or_copy(src: Path, dst: Path) -> None:
    """Atomically make `dst` hold the same bytes as `src` (hard link, or a copy where links fail)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    os.replace(tmp, dst)
    _fsync_dir(dst.parent)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; raises CheckpointError naming the file if it is truncated or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, CRC error, ...
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt and cannot be loaded "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(state, dict) or not str(state.get("format", "")).startswith("csa-inpainting/"):
        raise CheckpointError(f"{path} is not a csa-inpainting checkpoint (no 'format' key "
                              f"'csa-inpainting/...'; original CSA weights load through csa_lib.official)")
    return state


def verify_checkpoint(path: str | os.PathLike) -> bool:
    """Cheap integrity check without unpickling: the zip archive is complete and every CRC matches."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None and any(n.endswith("data.pkl") for n in archive.namelist())
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def checkpoint_candidates(directory: str | os.PathLike) -> list[Path]:
    """Step checkpoints in `directory`, newest step first, then `last.pt` as the final fallback."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    steps = []
    for p in directory.iterdir():
        match = _STEP_RE.match(p.name)
        if match and p.is_file():
            steps.append((int(match.group(1)), p))
    ordered = [p for _, p in sorted(steps, reverse=True)]
    last = directory / LAST_NAME
    if last.is_file():
        ordered.append(last)
    return ordered


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """Newest checkpoint in `directory` that passes `verify_checkpoint`; warns about each bad newer one."""
    for path in checkpoint_candidates(directory):
        if verify_checkpoint(path):
            return path
        warnings.warn(f"skipping truncated or corrupt checkpoint {path}; trying the previous one",
                      RuntimeWarning, stacklevel=2)
    return None


def load_latest(directory: str | os.PathLike, map_location: Any = "cpu") -> tuple[Path, dict[str, Any]] | None:
    """(path, state) of the newest checkpoint that fully loads, skipping bad ones with a warning; None if none."""
    for path in checkpoint_candidates(directory):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as exc:
            warnings.warn(f"{exc}; trying the previous checkpoint", RuntimeWarning, stacklevel=2)
    return None


def prune_checkpoints(directory: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest `keep` step checkpoints (never `last.pt`); returns the deleted paths."""
    steps = [p for p in checkpoint_candidates(directory) if p.name != LAST_NAME]  # newest first
    doomed = steps[max(keep, 0):]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def save_training_checkpoint(directory: str | os.PathLike, state: dict[str, Any], keep: int) -> Path:
    """Write `step_<step>.pt` atomically, point `last.pt` at it, keep the newest `keep` step files."""
    directory = Path(directory)
    if keep <= 0:  # only last.pt is wanted
        return save_checkpoint(directory / LAST_NAME, state)
    path = save_checkpoint(directory / step_checkpoint_name(int(state["step"])), state)
    _link_or_copy(path, directory / LAST_NAME)
    prune_checkpoints(directory, keep)
    return path


def export_generator(ckpt_path: str | os.PathLike, out_path: str | os.PathLike, half: bool = True) -> Path:
    """Write a small shipping file with only format/config/step/generator (floating tensors fp16 if `half`)."""
    state = load_checkpoint(ckpt_path)
    weights = {k: (v.half() if half and v.is_floating_point() else v).clone()
               for k, v in state["generator"].items()}
    small = {"format": FORMAT, "config": state["config"], "step": state["step"], "generator": weights}
    return save_checkpoint(out_path, small)
