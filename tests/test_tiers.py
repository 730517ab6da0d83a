"""Test tiers: `make test-fast` leaves the slow tests out, and the gpu tier skips without CUDA."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def _pytest(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_fast_tier_leaves_out_torchrun_cli_long_training_and_browser():
    done = _pytest("--collect-only", "-q", "-m", "not slow and not browser", "tests/test_ddp.py",
                   "tests/test_train.py", "tests/test_browser_mask_painter.py", cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    collected = done.stdout
    for slow in ("test_two_cpu_processes_end_with_equal_updated_weights", "test_cli_smoke_run_and_resume",
                 "test_smoke_training_lowers_l1_and_writes_logs_samples_checkpoints",
                 "test_kill_and_resume_gives_identical_weights", "test_browser_mask_painter.py::"):
        assert slow not in collected, f"{slow} runs in the fast tier"
    for fast in ("test_cli_flags_convert_to_config_values", "test_train_step_handles_any_batch_size"):
        assert fast in collected


def test_gpu_tier_skips_without_cuda_and_names_the_reason(tmp_path):
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.gpu\n"
        "def test_needs_cuda():\n"
        "    raise AssertionError('a gpu test ran without CUDA')\n\n"
        "@pytest.mark.slow\n"
        "def test_slow():\n"
        "    pass\n\n"
        "def test_plain():\n"
        "    pass\n")
    # the project's conftest as a plugin, its pyproject for the registered markers; no CUDA visible
    done = _pytest("-p", "conftest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
                   "--strict-markers", "-rs", "-m", "not slow", "test_probe.py", cwd=tmp_path,
                   env={"CUDA_VISIBLE_DEVICES": ""})
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "1 passed, 1 skipped, 1 deselected" in out, out[-3000:]
    assert "needs a CUDA device" in out
