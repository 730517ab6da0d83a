"""scripts/learning_curve.py on a toy run: one row per (step, set, mask), rows kept and skipped on a rerun."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from csa_lib.config import Config
from csa_lib.model import build_models

ROOT = Path(__file__).resolve().parents[1]


def toy_checkpoint(path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    cfg = Config.smoke(image_size=32, ngf=4, ndf=4)
    generator, _, _ = build_models(cfg)
    torch.save({"format": "csa-inpainting/1", "config": cfg.to_dict(), "step": seed,
                "generator": generator.state_dict()}, path)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "learning_curve.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_curve_measures_every_step_once_and_spreads_the_sample(tmp_path):
    run_dir, photos = tmp_path / "run", tmp_path / "photos"
    run_dir.mkdir(), photos.mkdir()
    toy_checkpoint(tmp_path / "start.pt", 0)
    for step in (5, 10):
        toy_checkpoint(run_dir / f"step_{step:08d}.pt", step)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    args = ["--run", str(run_dir), "--start", str(tmp_path / "start.pt"), "--size", "32",
            "--set", f"all={photos}", "--set", f"few={photos}:2", "--out", str(tmp_path / "out")]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    with (tmp_path / "out" / "curve.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted({int(r["step"]) for r in rows}) == [0, 5, 10]
    assert len(rows) == 3 * 2 * 2  # steps x sets x masks
    assert {r["n"] for r in rows if r["set"] == "few"} == {"2"} and {r["n"] for r in rows if r["set"] == "all"} == {"5"}
    assert len({r["psnr"] for r in rows if r["set"] == "all" and r["mask"] == "freeform"}) == 3  # other weights, other fills
    assert (tmp_path / "out" / "curve.png").stat().st_size > 0
    again = run(*args)
    assert again.returncode == 0 and "PSNR" not in again.stdout  # nothing measured twice
    bad = run("--run", str(run_dir), "--set", "nofolder", "--out", str(tmp_path / "o2"))
    assert bad.returncode != 0 and "NAME=FOLDER" in bad.stderr
