"""One writer per run folder: `csa_lib.engine.run_lock.RunLock`."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from csa_lib.engine import run_lock


def test_run_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    lock = run_lock.RunLock(tmp_path)
    with lock:
        owner = json.loads((tmp_path / run_lock.LOCK_NAME).read_text())
        assert owner["pid"] == os.getpid() and owner["hostname"] == socket.gethostname()
        with pytest.raises(run_lock.RunLockedError, match=rf"in use by another trainer \(pid {os.getpid()}"):
            run_lock.RunLock(tmp_path).acquire()  # a second writer in this very process
    assert not (tmp_path / run_lock.LOCK_NAME).exists()

    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / run_lock.LOCK_NAME).write_text(json.dumps({"pid": alive.pid, "hostname": socket.gethostname()}))
        with pytest.raises(run_lock.RunLockedError, match=rf"pid {alive.pid}.*delete .*run.lock"):
            run_lock.RunLock(tmp_path).acquire()
    finally:
        alive.kill()
        alive.wait()
    with pytest.warns(RuntimeWarning, match=rf"stale lock .*pid {alive.pid}"):  # its process is gone now
        run_lock.RunLock(tmp_path).acquire().release()
    (tmp_path / run_lock.LOCK_NAME).write_text(json.dumps({"pid": 1, "hostname": "another-machine"}))
    with pytest.raises(run_lock.RunLockedError, match="another-machine"):  # cannot be checked from here
        run_lock.RunLock(tmp_path).acquire()
