"""How the demo weights fill the 128x128 centre hole of smooth synthetic photos (flat colours, skies).

On these the right fill is known exactly, so two figures show the artefacts users saw (a tinted
square, a dot in its middle, a visible border): the fill's mean-colour error and the pixel that
stands out most from the median of its 5x5 neighbourhood, in 8-bit levels, for `inpaint` as users
call it ("poisson": the blend with the fill's detail no rougher than its surroundings), with all of
the network's detail blended in ("poisson_full") and raw ("none"); the last two show the network itself. For a fill that looks right both stay within a few levels: a step of
3-5 levels is where a flat field starts to look uneven. A third column gives the perceptual distance
(shift-tolerant LPIPS of the whole image, lower is better; `csa_lib.eval.perceptual`). Also prints where the coarse network's
largest outlier sits, the dot, for holes at several positions.

    python benchmarks/bench_demo_smooth_fill.py [--checkpoint PATH]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy.ndimage import median_filter

from csa_lib.synthetic import smooth_scenes
from csa_lib.inference import inpaint, load_model
from csa_lib.eval.metrics import colour_cast
from csa_lib.eval.perceptual import lpips
from csa_lib.masks import center_mask

SIZE, LO, HI = 256, 64, 192


SMOOTH = smooth_scenes(SIZE)  # flat colours and skies, name -> uint8 (SIZE, SIZE, 3)


def outlier(image: np.ndarray, region: slice) -> float:
    """Largest |pixel - median of its 5x5 neighbourhood| over the channels, inside region x region."""
    image = image.astype(np.float32)
    return max(float(np.abs(image[..., c] - median_filter(image[..., c], 5, mode="nearest"))[region, region].max())
               for c in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="weights (default: the shipped demo model)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.checkpoint, device="cpu")
    hole = center_mask(SIZE, overlap=0)[0].numpy() > 0.5  # (SIZE, SIZE) bool, rows/cols LO..HI-1
    print("| photo | blend | fill colour error (levels, worst channel) | largest outlier (levels) | LPIPS |")
    print("|---|---|---|---|---|")
    for name, truth in SMOOTH.items():
        for blend in ("poisson", "poisson_full", "none"):
            out = np.asarray(inpaint(model, truth, hole, blend=blend), np.float32)
            error = colour_cast(out, truth, hole)  # worst channel's |mean(fill - truth)| over the hole
            print(f"| {name} | {blend} | {error:.1f} | {outlier(out, slice(LO - 4, HI + 4)):.0f} | {lpips(out, truth):.4f} |")
    size = model.image_size
    x = torch.tensor([70.0, 130.0, 200.0]).view(1, 3, 1, 1).expand(1, 3, size, size) / 127.5 - 1
    print("\ncoarse network on flat blue: hole (rows = cols) -> pixels over 60 levels off their neighbours")
    for lo, hi in ((size // 4, 3 * size // 4), (size // 12, size // 2), (size // 2 - 10, size - 8)):
        mask = torch.zeros(1, 1, size, size)
        mask[..., lo:hi, lo:hi] = 1
        with torch.no_grad():
            coarse = ((model(x, mask).coarse[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()
        dev = np.stack([np.abs(coarse[..., c] - median_filter(coarse[..., c], 5, mode="nearest")) for c in range(3)]).max(0)
        spots = np.argwhere(dev > 60)
        centre = spots.mean(0).round().astype(int).tolist() if len(spots) else None
        print(f"  {lo}..{hi - 1}: {len(spots)} pixels, centred at {centre}, worst {dev.max():.0f}")


if __name__ == "__main__":
    main()
