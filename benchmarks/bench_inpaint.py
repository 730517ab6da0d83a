"""End-to-end `inpaint` time with the shipped demo model, by photo size, with and without Poisson blending.

Prints one row per photo size and hole: median seconds for blend="none" and blend="poisson", and the
blend's share. Then a 100x100-px hole in an 800x600 and a 3200x2400 photo, `inpaint` end to end and
the Poisson blend alone: past the scaling of the photo for the network, both touch only the hole's
bounding box, so the big photo should cost about as much (the blend alone still returns a new copy
of the whole photo, which is its floor on a big one, unless it blends in place). Runs on CUDA when
present, else the CPU. Usage:
    python benchmarks/bench_inpaint.py [--sizes 256,1024,2048] [--repeats 3] [--checkpoint PATH]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from csa_lib.engine.blend import poisson_blend
from csa_lib.inference import inpaint, load_model
from csa_lib.masks import irregular_mask


def photo(size: int) -> np.ndarray:
    """A smooth gradient with noise, (size*3/4, size, 3) uint8: a landscape-shaped photo stand-in."""
    rng = np.random.default_rng(0)
    h, w = size * 3 // 4, size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (h + w)], axis=2) * 200
    return (base + rng.integers(0, 40, (h, w, 3))).astype(np.uint8)


def holes(h: int, w: int) -> dict[str, np.ndarray]:
    """A centre box over a quarter of the photo, and an irregular 20-30 % mask scaled to the photo."""
    box = np.zeros((h, w), bool)
    box[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = True
    small = irregular_mask(256, np.random.default_rng(0), (0.2, 0.3))  # (256,256) float, 1 = hole
    rows, cols = np.arange(h) * 256 // h, np.arange(w) * 256 // w
    return {"box 25%": box, "irregular 20-30%": small[rows][:, cols] > 0}


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def small_hole(model, repeats: int, device: torch.device) -> None:
    """Print `inpaint` and the Poisson blend alone for a 100x100-px hole in an 800x600 and a 3200x2400 photo, and their ratios."""
    print(f"\na 100x100-px hole in the middle, on {device}")
    times = []
    for w, h in ((800, 600), (3200, 2400)):
        pixels = photo(w)
        image = torch.from_numpy(pixels).permute(2, 0, 1).float().div(127.5).sub(1).to(device)  # (3,H,W)
        fill = (image * 0.8 + 0.1).contiguous()  # a fill off in contrast and brightness  (3,H,W)
        hole = torch.zeros(h, w, dtype=torch.bool, device=device)
        hole[h // 2 - 50: h // 2 + 50, w // 2 - 50: w // 2 + 50] = True
        target = image.clone()
        times.append((median_time(lambda: inpaint(model, pixels, hole.cpu().numpy()), repeats),
                      median_time(lambda: poisson_blend(fill, image, hole, tol=1e-3), repeats),
                      median_time(lambda: poisson_blend(fill, target, hole, tol=1e-3, out=target), repeats)))
        print(f"{w:>5}x{h:<5} | inpaint {times[-1][0]:8.3f} s | poisson_blend alone {times[-1][1]:8.3f} s "
              f"| in place (out=image) {times[-1][2]:8.3f} s")
    print(f"3200x2400 / 800x600: inpaint {times[1][0] / times[0][0]:.2f}x, "
          f"poisson_blend alone {times[1][1] / times[0][1]:.2f}x, in place {times[1][2] / times[0][2]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1024,2048", help="longer photo sides, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped demo model")
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    device = next(model.parameters()).device
    print(f"inpaint on {device} ({torch.get_num_threads()} CPU threads), model {model.image_size} px, "
          f"median of {args.repeats}")
    print(f"{'photo':>11} | {'hole':>16} | {'raw (s)':>8} | {'poisson (s)':>11} | blend share")
    for size in (int(s) for s in args.sizes.split(",")):
        image = photo(size)
        for name, hole in holes(*image.shape[:2]).items():
            raw = median_time(lambda: inpaint(model, image, hole, blend="none"), args.repeats)
            blended = median_time(lambda: inpaint(model, image, hole), args.repeats)
            share = max(blended - raw, 0.0) / blended
            print(f"{image.shape[1]:>5}x{image.shape[0]:<5} | {name:>16} | {raw:8.3f} | {blended:11.3f} | {share:6.0%}")
    small_hole(model, args.repeats, device)


if __name__ == "__main__":
    main()
