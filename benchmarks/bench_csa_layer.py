"""Batched CSA layer vs the literal per-sample loop, at B=8, C=512, 32x32 (the 256-px model's level).

Prints times and the speed-up on the CPU, and on CUDA when present. Usage:
    python benchmarks/bench_csa_layer.py [--batch 8] [--repeats 5] [--mask centre|irregular]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from csa_lib.csa_layer import coherent_semantic_attention, coherent_semantic_attention_reference, feature_hole_mask
from csa_lib.masks import irregular_mask


def make_inputs(batch: int, mask_kind: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Post-ReLU-like features (B,512,32,32) and per-sample hole masks (B,1,32,32)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 512, 32, 32, generator=gen).relu()
    if mask_kind == "centre":
        mask = torch.zeros(batch, 1, 256, 256)
        mask[..., 68:188, 68:188] = 1
    else:
        import numpy as np
        rng = np.random.default_rng(0)
        mask = torch.stack([torch.from_numpy(irregular_mask(256, rng, (0.2, 0.3)))[None] for _ in range(batch)])
    return x.to(device), feature_hole_mask(mask).to(device)


def timeit(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of `repeats` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mask", choices=["centre", "irregular"], default="centre")
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, B={args.batch}, C=512, 32x32, {args.mask} mask")
    for device in devices:
        x, hole = make_inputs(args.batch, args.mask, device)
        with torch.no_grad():
            fast = timeit(lambda: coherent_semantic_attention(x, hole), args.repeats, device)
            slow = timeit(lambda: coherent_semantic_attention_reference(x, hole), max(1, args.repeats // 2), device)
            y, ref = coherent_semantic_attention(x, hole), coherent_semantic_attention_reference(x, hole)
        rel = float((y - ref).abs().max() / ref.abs().max())
        name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
        print(f"[{name}] holes/sample {int(hole[0].sum())}: batched {fast * 1e3:8.1f} ms | literal loop "
              f"{slow * 1e3:8.1f} ms | speed-up {slow / fast:6.1f}x | max rel. difference {rel:.1e}")


if __name__ == "__main__":
    main()
