"""Training step at the demo configuration (scripts/train_demo_model.sh: 128 px, ngf = ndf = 16, batch 8,
mixed masks, no VGG), two variants interleaved in one process: PyTorch's dilated down convs (the
code before) and `model.DilatedDown` (the dilated convs as plain convs over the odd pixels, the code
now); then a torch.profiler breakdown of one step. (Until issue 19 a third variant ran autograd
through a per-step CSA loop, the code before the custom chain: 1.07x, benchmarks/README.md.)

    python benchmarks/bench_demo_step.py [--rounds 5] [--threads 2] [--image-size 256 --ngf 64 --ndf 64 --batch 1]
"""
from __future__ import annotations

import sys
import tempfile
import warnings

import torch

from bench_train import bench_parser, interleaved_medians, make_batch, parse_bench_args
from torch import nn
from torch.profiler import ProfilerActivity, profile

from csa_lib.config import Config
from csa_lib.model import DilatedDown
from csa_lib.train import Trainer

FAST_DOWN = DilatedDown.forward
VARIANTS = {"dilated convs (before)": nn.Conv2d.forward, "DilatedDown (now)": FAST_DOWN}  # name -> DilatedDown.forward


def use(variant: str) -> None:
    DilatedDown.forward = VARIANTS[variant]


def breakdown(trainer: Trainer, batch: dict[str, torch.Tensor]) -> None:
    """Self CPU time of one step by operator family (top rows)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.train_step(batch)
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]
    for e in rows:
        print(f"    {e.key[:48]:48s} {100 * e.self_cpu_time_total / total:5.1f} %  calls {e.count}")
    calls = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
    print(f"    aten calls per step (all levels): {calls}")


def main(argv: list[str] | None = None) -> int:
    """Interleave the variants for `rounds` rounds of `steps` steps; print medians, the ratio and a profile."""
    p = bench_parser(__doc__, image_size=128, ngf=16)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    p.add_argument("--ndf", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--mask-type", default="mixed")
    p.add_argument("--no-profile", action="store_true")
    args = parse_bench_args(p, argv)
    cfg = Config(image_size=args.image_size, ngf=args.ngf, ndf=args.ndf, batch_size=args.batch,
                 mask_type=args.mask_type, use_vgg=False, vgg_weights=None, checkpoints_dir=tempfile.mkdtemp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(cfg, device="cpu")
    batch = make_batch(args.batch, args.image_size, "random" if args.mask_type == "mixed" else args.mask_type)
    if args.mask_type == "mixed":  # half centre holes, half irregular, as MaskSource('mixed') draws them
        batch["mask"][::2] = make_batch(args.batch, args.image_size, "center")["mask"][::2]
    try:
        # each call sets its variant first (one attribute assignment, nothing next to a step)
        medians = interleaved_medians({name: (lambda n=name: (use(n), trainer.train_step(batch))) for name in VARIANTS},
                                      args.rounds, args.steps, args.batch,
                                      f"{args.image_size} px, ngf {args.ngf}, ndf {args.ndf}, {args.mask_type} masks")
        base = medians["dilated convs (before)"][0]
        for name, (med, values) in medians.items():
            print(f"  {name:24s} {med:7.3f} s/step  {args.batch / med:6.2f} img/s  x{base / med:4.2f}  "
                  f"(rounds: {', '.join(f'{v:.2f}' for v in values)})")
        if not args.no_profile:
            for name in VARIANTS:
                use(name)
                print(f"  profile, {name}:")
                breakdown(trainer, batch)
    finally:
        use("DilatedDown (now)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
