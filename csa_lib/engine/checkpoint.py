"""Checkpoint files: atomic saves, corruption checks, retention and small fp16 generator exports.

A training checkpoint is one `torch.save` dict (docs/INTERFACES.md):
`format` ("csa-inpainting/1"), `config` (Config.to_dict()), `step`, `epoch`, `generator`,
`patch_disc`, `feature_disc` (state dicts), `optimizers` and `schedulers` (dicts of 4 state dicts),
`rng` (python, numpy, torch cpu/cuda generators and the data-order position), `history`
(list of averaged loss rows). The trainer also stores `scalers` (AMP) and `log_state`.

Step checkpoints are `step_00001000.pt`; `last.pt` always holds the newest one (a hard link
when the file system allows it, else a copy). Every file is written to a temporary name in the
same folder, fsync'ed and renamed over the target, so a crash mid-save never leaves a
half-written checkpoint under a real name; a full disk raises `DiskFullError` and leaves the
previous file as it was.

Reading is safe: `read_torch_file` is the one door every checkpoint goes through (training
checkpoints, exports, run folders, the original layout). It refuses empty files and files that are
not PyTorch checkpoints (saying what they look like), checks every zip CRC (`torch.load` itself
does not, so a damaged tensor would load as garbage), and unpickles with `weights_only=True` only:
a file holding anything but tensors and plain Python types raises `UnsafeCheckpointError`, never
runs code. Our own checkpoints hold nothing else.

One writer per run folder is `csa_lib.engine.run_lock.RunLock`; `remove_stale_temp_files` runs under it.
"""
from __future__ import annotations

import errno
import os
import pickle
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
_TEMP_RE = re.compile(r"^\..+\.tmp$")  # what save_checkpoint, _link_or_copy and the CSV log write first


class CheckpointError(RuntimeError, ValueError):
    """A checkpoint file is empty, truncated, damaged, unsafe or not a csa-inpainting checkpoint (bad input)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds pickled objects other than tensors and plain types; it is never unpickled."""


class DiskFullError(OSError):
    """The disk filled up while a checkpoint was written; the previous checkpoint is untouched."""


class NothingToResumeError(FileNotFoundError):
    """`--resume` pointed at a folder with no checkpoint in it."""


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
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        _raise_if_disk_full(exc, path)
        raise
    _fsync_dir(path.parent)
    return path


def _raise_if_disk_full(exc: BaseException, path: Path) -> None:
    """Turn a full disk (ENOSPC/EDQUOT anywhere in the exception chain; torch wraps it) into DiskFullError."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            previous = f" ({path.name} still holds the previous checkpoint)" if path.exists() else ""
            raise DiskFullError(seen.errno, f"no space left on the device while saving {path}{previous}; "
                                            f"free some space (or lower --keep-checkpoints) and resume with "
                                            f"--resume") from exc
        seen = seen.__cause__ or seen.__context__


def _link_or_copy(src: Path, dst: Path) -> None:
    """Atomically make `dst` hold the same bytes as `src` (hard link, or a copy where links fail)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _raise_if_disk_full(exc, dst)
        raise
    _fsync_dir(dst.parent)


_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"\x1f\x8b", "a gzip archive"), (b"<!DOCTYPE", "an HTML page (a failed download?)"),
          (b"<html", "an HTML page (a failed download?)"), (b"version https://git-lfs",
          "a Git LFS pointer (run `git lfs pull`)"), (b"PK", "a zip archive"))


def _what_is(head: bytes) -> str:
    """A short description of a file that is not a PyTorch checkpoint, from its first bytes."""
    for magic, name in _MAGIC:
        if head.lower().startswith(magic.lower()):
            return name
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return f"unknown binary data (starts with {head[:8].hex(' ')})"


def check_integrity(path: str | os.PathLike) -> None:
    """Raise CheckpointError naming `path` unless it is a complete PyTorch file: not empty, CRCs right.

    Zip checkpoints (every PyTorch >= 1.6 file) get every member's CRC checked, which `torch.load`
    skips; the legacy format (a bare pickle, as the original 2019 code saved) has no checksum to check.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): an interrupted download or save; "
                              "download or save it again")
    with open(path, "rb") as f:
        head = f.read(64)
    if not zipfile.is_zipfile(path):
        if head[:1] == b"\x80":  # a pickle protocol opcode: the legacy (pre-1.6) torch.save format
            return
        what = ("a zip archive cut short (truncated)" if head.startswith(b"PK") else _what_is(head))
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: it is {what} ({size} bytes)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is truncated or damaged: its zip archive cannot be read "
                              f"({type(exc).__name__}: {exc})") from exc
    if bad is not None:
        raise CheckpointError(f"{path} is damaged: '{bad}' inside it fails its CRC check (bytes changed on "
                              f"disk or in transfer); use an older checkpoint or download it again")
    if not any(n.endswith("data.pkl") for n in names):
        raise CheckpointError(f"{path} is a zip archive but not a PyTorch checkpoint (no data.pkl inside)")


def read_torch_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """`torch.load(path, weights_only=True)` after `check_integrity`; every failure is a CheckpointError naming it.

    There is no fallback to `weights_only=False`: a file holding other pickled objects raises
    UnsafeCheckpointError and nothing in it is run.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    check_integrity(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            first = next((line.strip() for line in str(exc).splitlines() if "Unsupported" in line
                          or "GLOBAL" in line), "")
            raise UnsafeCheckpointError(
                f"{path} holds objects that cannot be loaded safely (only tensors and plain Python types "
                f"are loaded, never code); it was refused and nothing in it ran. {first}".strip()) from exc
        raise CheckpointError(f"checkpoint {path} is corrupt and cannot be loaded ({exc})") from exc
    except Exception as exc:  # truncated records, bad pickle, ...
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt and cannot be loaded "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict; raises CheckpointError naming the file if it is truncated or corrupt."""
    path = Path(path)
    state = read_torch_file(path, map_location)
    if not isinstance(state, dict) or not str(state.get("format", "")).startswith("csa-inpainting/"):
        raise CheckpointError(f"{path} is not a csa-inpainting checkpoint (no 'format' key "
                              f"'csa-inpainting/...'; original CSA weights load through csa_lib.engine.official_layout)")
    return state


def verify_checkpoint(path: str | os.PathLike) -> bool:
    """Cheap integrity check without unpickling (`check_integrity`): True when the file is complete and its CRCs match."""
    try:
        check_integrity(path)
    except (CheckpointError, OSError):
        return False
    return True


def _named_files(directory: str | os.PathLike, pattern: re.Pattern[str]) -> list[tuple[re.Match[str], Path]]:
    """(match, path) of each file in `directory` whose name `pattern` matches, in listing order; [] without the folder."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return [(match, p) for p in directory.iterdir() if (match := pattern.match(p.name)) and p.is_file()]


def checkpoint_candidates(directory: str | os.PathLike) -> list[Path]:
    """Step checkpoints in `directory`, newest step first, then `last.pt` as the final fallback."""
    steps = [(int(match.group(1)), p) for match, p in _named_files(directory, _STEP_RE)]
    ordered = [p for _, p in sorted(steps, reverse=True)]
    last = Path(directory) / LAST_NAME
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


def remove_stale_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete the `.<name>.tmp` files a killed save left in `directory` (call it holding the run's `run_lock.RunLock`)."""
    stale = [p for _, p in _named_files(directory, _TEMP_RE)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _runs_near(directory: Path) -> list[Path]:
    """Run folders (holding checkpoints) inside `directory` and beside it, for an error message."""
    places = [directory] if directory.is_dir() else []
    if directory.parent.is_dir():
        places.append(directory.parent)
    found: list[Path] = []
    for place in places:
        try:
            children = sorted(p for p in place.iterdir() if p.is_dir())
        except OSError:
            continue
        found += [p for p in children if p != directory and p not in found and checkpoint_candidates(p)]
    return found[:10]


def resume_point(directory: str | os.PathLike, map_location: Any = "cpu") -> tuple[Path, dict[str, Any]]:
    """`load_latest(directory)`, or NothingToResumeError naming the folder and the run folders near it."""
    directory = Path(directory)
    found = load_latest(directory, map_location)
    if found is not None:
        return found
    if not directory.exists():
        where = f"{directory} does not exist"
    elif checkpoint_candidates(directory):
        where = f"{directory} holds no loadable checkpoint (every one is damaged, see the warnings above)"
    else:
        where = f"{directory} holds no checkpoint (step_*.pt or {LAST_NAME})"
    near = _runs_near(directory)
    hint = (f"; run folders nearby: {', '.join(str(p) for p in near)}" if near
            else "; check --checkpoints-dir, or drop --resume to start a new run")
    raise NothingToResumeError(f"nothing to resume: {where}{hint}")
