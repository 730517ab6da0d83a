"""One writer per run folder: `RunLock` (`<run>/run.lock`, PID + hostname) makes a second trainer on
the same folder refuse with `RunLockedError`. The trainer takes it in `fit()` before anything is
written, and for the duration of a `save()` outside `fit()`.
"""
from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

LOCK_NAME = "run.lock"


class RunLockedError(RuntimeError):
    """Another live trainer holds the run folder's lock."""


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


_HELD_LOCKS: set[str] = set()  # run folders whose lock a trainer of this process holds right now


class RunLock:
    """One writer per run folder: `<directory>/run.lock` holds the writer's PID and hostname.

    `acquire()` creates it atomically (O_EXCL). If one exists and its process is alive (or it belongs
    to another host, which cannot be checked), RunLockedError; if its process is gone (same host,
    dead PID, or this very process with no trainer holding it), the lock is stale: a warning, taken over.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.held = False

    def _owner(self) -> dict[str, Any] | None:
        try:
            owner = json.loads(self.path.read_text())
            return owner if isinstance(owner, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable or half-written: treated as held by an unknown writer

    def _is_stale(self, owner: dict[str, Any]) -> bool:
        pid, host = owner.get("pid"), owner.get("hostname")
        if not isinstance(pid, int) or host != socket.gethostname():
            return False
        if pid == os.getpid():
            return str(self.directory.resolve()) not in _HELD_LOCKS
        return not _process_alive(pid)

    def acquire(self) -> "RunLock":
        """Take the lock (removing a stale one); RunLockedError if another live trainer writes here."""
        if self.held:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "hostname": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:
                    continue  # released in between: try again
                if not self._is_stale(owner):
                    who = (f"pid {owner.get('pid')} on {owner.get('hostname')}, since {owner.get('since')}"
                           if owner else "an unknown writer (the lock file is unreadable)")
                    raise RunLockedError(
                        f"{self.directory} is in use by another trainer ({who}); use another --checkpoints-dir, "
                        f"or, if that trainer is no longer running, delete {self.path}")
                warnings.warn(f"removing the stale lock {self.path} of pid {owner.get('pid')} on "
                              f"{owner.get('hostname')} (that process is gone)", RuntimeWarning, stacklevel=2)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            _HELD_LOCKS.add(str(self.directory.resolve()))
            return self
        raise RunLockedError(f"could not take the lock {self.path}: it keeps changing hands")

    def release(self) -> None:
        """Remove the lock file if this object holds it."""
        if not self.held:
            return
        self.held = False
        _HELD_LOCKS.discard(str(self.directory.resolve()))
        owner = self._owner()
        if owner and owner.get("pid") == os.getpid() and owner.get("hostname") == socket.gethostname():
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
