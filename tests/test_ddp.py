"""DDP on CPU: 2 processes (gloo) under torchrun train a few steps and end with identical, updated weights."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from csa_lib.engine import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3

WORKER = textwrap.dedent(f"""
    import sys, torch, torch.distributed as dist
    from csa_lib.config import Config
    from csa_lib.train import Trainer

    out = sys.argv[1]
    cfg = Config.smoke(image_size=64, ngf=4, ndf=4, batch_size=2, max_steps={STEPS}, data_root="synthetic",
                       checkpoints_dir=out + "/run", log_every=1, sample_every=2, save_every=2, seed=5)
    trainer = Trainer(cfg, device="cpu")
    init = {{k: v.clone() for k, v in trainer.generator.state_dict().items()}}
    trainer.fit()
    nets = {{n: getattr(trainer, n).state_dict() for n in ("generator", "patch_disc", "feature_disc")}}
    torch.save({{"nets": nets, "init": init, "rank": trainer.rank, "world": trainer.world_size,
                "backend": dist.get_backend(), "ddp": type(trainer.ddp_generator).__name__,
                "indices": trainer.sampler.epoch_indices(0)[: {STEPS} * cfg.batch_size],
                "history": trainer.history}}, f"{{out}}/rank{{trainer.rank}}.pt")
    trainer.close()
""")


@pytest.mark.slow  # two torchrun processes
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_two_cpu_processes_end_with_equal_updated_weights(tmp_path):
    script = tmp_path / "ddp_worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == 2 for r in ranks)
    assert all(r["backend"] == "gloo" and r["ddp"] == "DistributedDataParallel" for r in ranks)
    assert not set(ranks[0]["indices"]) & set(ranks[1]["indices"])  # each rank saw different images

    for net in ("generator", "patch_disc", "feature_disc"):
        a, b = ranks[0]["nets"][net], ranks[1]["nets"][net]
        unequal = [k for k in a if not torch.equal(a[k], b[k])]
        assert not unequal, (net, unequal[:5])  # gradients were averaged, so the replicas agree
    changed = [k for k, v in ranks[0]["init"].items() if not torch.equal(v, ranks[0]["nets"]["generator"][k])]
    assert len(changed) > len(ranks[0]["init"]) // 2  # and they trained
    assert ranks[0]["history"] == ranks[1]["history"]  # losses are averaged over the ranks

    run = tmp_path / "run"  # only rank 0 writes: one log row per step, one checkpoint per save
    with open(run / "log.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, STEPS + 1))
    state = ckpt.load_checkpoint(run / "last.pt")
    assert state["step"] == STEPS
    for k, v in state["generator"].items():
        assert torch.equal(v, ranks[0]["nets"]["generator"][k])
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_00000002.png"]
