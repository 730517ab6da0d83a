"""Procedural mask generation, milliseconds per mask: what one data-loader worker spends per sample.

At the demo configuration (batch 8) a step takes 0.5-3 s on this 2-core CPU, so masks cost a few
percent of a step as long as one takes well under 20 ms. Prints the median over `--count` masks of
each kind at each size.

    python benchmarks/bench_masks.py [--sizes 128,256] [--count 60]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from csa_lib.masks import HOLE_BUCKETS, irregular_mask, random_box_mask, random_irregular_mask


def median_ms(make, count: int) -> float:
    times = []
    for k in range(count):
        start = time.perf_counter()
        make(k)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    kinds = {"irregular, by hole bucket": lambda size, k: irregular_mask(size, rng, HOLE_BUCKETS[k % len(HOLE_BUCKETS)]),
             "random irregular (0-60 %)": lambda size, k: random_irregular_mask(size, rng),
             "random box": lambda size, k: random_box_mask(size, rng)}
    print(f"{'mask':28s} | " + " | ".join(f"{s:>4} px (ms)" for s in map(int, args.sizes.split(","))))
    for name, make in kinds.items():
        row = [median_ms(lambda k: make(size, k), args.count) for size in map(int, args.sizes.split(","))]
        print(f"{name:28s} | " + " | ".join(f"{ms:12.2f}" for ms in row))


if __name__ == "__main__":
    main()
