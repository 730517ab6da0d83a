"""Training throughput of the full-size model: images/second of `Trainer.train_step` (D+F step, then G+P step).

    python benchmarks/bench_train.py                    # CPU: batch 1, 2 warm-up + 3 timed steps
    python benchmarks/bench_train.py --batch-size 8     # CUDA: AMP on, 5 warm-up + 20 timed steps

256 px, ngf = ndf = 64 (the original's width), random VGG weights (same cost as ImageNet ones),
the original's centre hole unless --mask-type random. Prints device, batch, AMP, img/s and peak memory.
"""
from __future__ import annotations

import argparse
import resource
import statistics
from collections.abc import Callable, Mapping
import sys
import tempfile
import time

import torch

from csa_lib.config import Config
from csa_lib.masks import MaskSource
from csa_lib.train import Trainer


def bench_parser(doc: str, image_size: int, ngf: int | None = None, device: bool = False) -> argparse.ArgumentParser:
    """A benchmark's parser with the options they share: --image-size, --threads, --ngf (unless None), --device (with `device`)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if device:
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--image-size", type=int, default=image_size)
    if ngf is not None:
        p.add_argument("--ngf", type=int, default=ngf)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p


def parse_bench_args(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`p.parse_args(argv)`; --threads, when given, sets torch's CPU threads."""
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def make_batch(batch_size: int, size: int, mask_type: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random images (B,3,size,size) in [-1,1] with masks (B,1,size,size) from MaskSource."""
    g = torch.Generator().manual_seed(seed)
    masks = MaskSource(mask_type, size, seed=seed)
    return {"image": torch.rand(batch_size, 3, size, size, generator=g) * 2 - 1,
            "mask": torch.stack([masks.sample(i) for i in range(batch_size)])}


def interleaved_times(steps: Mapping[str, Callable[[], object]], rounds: int, per_round: int) -> dict[str, list[float]]:
    """Seconds per call of each `steps[name]()`, averaged over `per_round` calls, for `rounds` rounds in which
    the variants take turns (round 0 warms up and is not kept), so a busy machine slows them alike."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds + 1):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(per_round):
                step()
            if r:
                times[name].append((time.perf_counter() - start) / per_round)
    return times


def interleaved_medians(steps: Mapping[str, Callable[[], object]], rounds: int, per_round: int, batch: int,
                        setting: str) -> dict[str, tuple[float, list[float]]]:
    """`interleaved_times`, one header line (`setting`, threads, rounds) printed -> {name: (median s/step, rounds)}.

    The callers print one line a variant from these; `batch` / median is its throughput in img/s.
    """
    times = interleaved_times(steps, rounds, per_round)
    print(f"{setting}, batch {batch}, {torch.get_num_threads()} threads, "
          f"medians of {rounds} interleaved rounds of {per_round} steps")
    return {name: (statistics.median(values), values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one summary line."""
    p = bench_parser(__doc__, image_size=256, ngf=64, device=True)
    p.add_argument("--batch-size", type=int, default=None, help="default: 8 on CUDA, 1 on CPU")
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--warmup", type=int, default=None, help="default: 5 on CUDA, 2 on CPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps; default: 20 on CUDA, 3 on CPU")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="mixed precision (CUDA only)")
    p.add_argument("--mask-type", default="center", choices=("center", "random"))
    args = parse_bench_args(p, argv)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    batch_size = args.batch_size or (8 if on_gpu else 1)
    warmup = args.warmup if args.warmup is not None else (5 if on_gpu else 2)
    steps = args.steps if args.steps is not None else (20 if on_gpu else 3)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(image_size=args.image_size, ngf=args.ngf, ndf=args.ndf, batch_size=batch_size,
                     vgg_weights=None, amp=args.amp, checkpoints_dir=tmp, mask_type=args.mask_type)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = Trainer(cfg, device=device)
        batch = {k: v.to(device) for k, v in make_batch(batch_size, args.image_size, args.mask_type).items()}
        sync = torch.cuda.synchronize if on_gpu else (lambda: None)
        for _ in range(warmup):
            trainer.train_step(batch)
        sync()
        if on_gpu:
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(steps):
            logs = trainer.train_step(batch)
        sync()
        elapsed = time.perf_counter() - start

    if on_gpu:
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (CUDA allocated)"
        name = torch.cuda.get_device_name(device)
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (process max RSS)"
        name = f"CPU, {torch.get_num_threads()} threads"
    n_params = sum(p.numel() for net in (trainer.generator, trainer.patch_disc, trainer.feature_disc)
                   for p in net.parameters())
    print(f"device: {device} ({name})")
    print(f"model: {args.image_size} px, ngf {args.ngf}, ndf {args.ndf}, {n_params / 1e6:.1f} M trained parameters, "
          f"mask {args.mask_type}")
    print(f"batch: {batch_size}, AMP: {trainer.amp}, warm-up {warmup}, timed {steps} steps")
    print(f"time/step: {elapsed / steps:.3f} s, throughput: {batch_size * steps / elapsed:.3f} img/s")
    print(f"peak memory: {peak}")
    print(f"last losses: g_total {logs['g_total']:.3f}, d_total {logs['d_total']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
