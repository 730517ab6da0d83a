"""Inference speed of the full-width generator (coarse + refinement net with CSA) at 256 px.

    python benchmarks/bench_generator.py                          # CPU: batch 1, float32, s/image
    python benchmarks/bench_generator.py --batch 64 --bf16        # CUDA: bfloat16 autocast, img/s

Random weights (the same cost as trained ones), the original's centre hole or irregular holes.
Prints seconds per image, images per second and peak memory (CUDA). The original code's forward of
both networks takes 0.62 s per image on a 2-core CPU (its issue 14).
"""
from __future__ import annotations

import contextlib
import statistics
import sys
import time

import torch

from bench_train import bench_parser, make_batch, parse_bench_args
from csa_lib.model import CSAGenerator


def main(argv: list[str] | None = None) -> int:
    """Time `repeats` generator forwards after `warmup` and print one summary line."""
    p = bench_parser(__doc__, image_size=256, ngf=64, device=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--mask-type", default="center", choices=("center", "random"))
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = parse_bench_args(p, argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = CSAGenerator(args.ngf, args.image_size).to(device).eval()
    batch = make_batch(args.batch, args.image_size, args.mask_type)
    image, mask = batch["image"].to(device), batch["mask"].to(device)  # (B,3,H,W), (B,1,H,W)
    cast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode(), cast:
        for i in range(args.warmup + args.repeats):
            sync()
            start = time.perf_counter()
            net(image, mask)
            sync()
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
    per_call = statistics.median(times)
    peak = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"generator forward: {args.image_size} px, ngf {args.ngf}, batch {args.batch}, "
          f"{'bf16' if args.bf16 else 'fp32'}, {where}: {per_call / args.batch:.4f} s/image, "
          f"{args.batch / per_call:.1f} img/s (median of {args.repeats}){peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
