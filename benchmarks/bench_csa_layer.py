"""Batched CSA layer vs the literal per-sample loop, at B=8, C=512, 32x32 (the 256-px model's level).

Prints times and the speed-up on the CPU, and on CUDA when present; then forward and backward times
and operator / kernel launches per call (from torch.profiler) of the layer in training, for each
backend of the chain (`engine.csa_chain`: the torch loops, and on CUDA the Triton kernels), measured
interleaved. (Until issue 19 this also timed autograd through a per-step loop, the code before the
custom backward: 1.07x on a CPU demo step, benchmarks/README.md.) Usage:
    python benchmarks/bench_csa_layer.py [--batch 8] [--repeats 5] [--mask centre|irregular]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from csa_lib.csa_layer import coherent_semantic_attention, coherent_semantic_attention_reference, feature_hole_mask
from csa_lib.engine.csa_chain import chain_backend
from csa_lib.masks import irregular_mask


def make_inputs(batch: int, mask_kind: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Post-ReLU-like features (B,512,32,32) and per-sample hole masks (B,1,32,32)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 512, 32, 32, generator=gen).relu()
    if mask_kind == "centre":
        mask = center_mask(256)[None].repeat(batch, 1, 1, 1)  # (B,1,256,256) rows/cols 68..187
    else:
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


def launches(fn, device: torch.device) -> int:
    """Operator calls the profiler sees at top level (CPU) or CUDA kernels launched (CUDA) by one fn()."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
    events = prof.events()
    if device.type == "cuda":
        return sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return sum(1 for e in events if e.name.startswith("aten::") and
               (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")))


def chain_comparison(x: torch.Tensor, hole: torch.Tensor, repeats: int, device: torch.device) -> None:
    """Forward, backward and launches per call of the layer with each chain backend on `device`, interleaved."""
    backends = {"torch loops": "0"} | ({"triton kernels": "1"} if chain_backend(device) == "triton" else {})
    xg = x.clone().requires_grad_()
    grad = torch.randn_like(x)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = {name: {"fwd": [], "bwd": []} for name in backends}
    switch = os.environ.get("CSA_TRITON")
    try:
        for _ in range(repeats + 1):  # the first round warms up
            for name, flag in backends.items():
                os.environ["CSA_TRITON"] = flag  # read by chain_backend at every call
                sync()
                t0 = time.perf_counter()
                y = coherent_semantic_attention(xg, hole)
                sync()
                t1 = time.perf_counter()
                y.backward(grad)
                sync()
                t2 = time.perf_counter()
                times[name]["fwd"].append(t1 - t0)
                times[name]["bwd"].append(t2 - t1)
                xg.grad = None
        counts = {}
        for name, flag in backends.items():
            os.environ["CSA_TRITON"] = flag
            with torch.no_grad():
                fwd_n = launches(lambda: coherent_semantic_attention(x, hole), device)
            y = coherent_semantic_attention(xg, hole)
            bwd_n = launches(lambda: y.backward(grad), device)
            counts[name] = (fwd_n, bwd_n)
    finally:
        if switch is None:
            os.environ.pop("CSA_TRITON", None)
        else:
            os.environ["CSA_TRITON"] = switch
    base = {k: statistics.median(v[1:]) for k, v in times["torch loops"].items()}
    for name in backends:
        fwd, bwd = (statistics.median(times[name][k][1:]) for k in ("fwd", "bwd"))
        print(f"  {name:24s} forward {fwd * 1e3:8.1f} ms  backward {bwd * 1e3:8.1f} ms  "
              f"(x{base['fwd'] / fwd:4.2f} / x{base['bwd'] / bwd:4.2f})  launches/call: forward {counts[name][0]}, "
              f"backward {counts[name][1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mask", choices=["centre", "irregular"], default="centre")
    parser.add_argument("--no-literal", action="store_true", help="skip the (slow) literal loop")
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    devices = [d for d in devices if args.device in ("all", d.type)]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, B={args.batch}, C=512, 32x32, {args.mask} mask")
    for device in devices:
        x, hole = make_inputs(args.batch, args.mask, device)
        with torch.no_grad():
            fast = timeit(lambda: coherent_semantic_attention(x, hole), args.repeats, device)
            if args.no_literal:
                slow, rel = float("nan"), float("nan")
            else:
                slow = timeit(lambda: coherent_semantic_attention_reference(x, hole), max(1, args.repeats // 2),
                              device)
                y, ref = coherent_semantic_attention(x, hole), coherent_semantic_attention_reference(x, hole)
                rel = float((y - ref).abs().max() / ref.abs().max())
        name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
        print(f"[{name}] holes/sample {int(hole[0].sum())}: batched {fast * 1e3:8.1f} ms | literal loop "
              f"{slow * 1e3:8.1f} ms | speed-up {slow / fast:6.1f}x | max rel. difference {rel:.1e}")
        print(f"[{name}] training (forward with graph, backward), medians of {args.repeats}, interleaved:")
        chain_comparison(x, hole, args.repeats, device)


if __name__ == "__main__":
    main()
