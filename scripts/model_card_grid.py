"""The model card's picture grid: input, CSA (`inpaint`), Telea, PatchMatch and the truth, one row a photo.

Photos are named on the command line (stems of files in --images); each gets the 128x128 centre hole
at 256 px, hole pixels blanked, as the held-out evaluation does. Writes a JPEG (default
docs/images/model_card_grid.jpg) with each row's PSNR / LPIPS under its pictures.

    python scripts/model_card_grid.py --images data/training_v2/unseen_by_round8 desert7 coffee ...
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from csa_lib.eval import metrics, perceptual
from csa_lib.eval.baselines import BASELINES
from csa_lib.eval.evaluate import center_half_masks, load_image
from csa_lib.imageio import IMAGE_EXTENSIONS
from csa_lib.inference import inpaint, load_model

COLUMNS = ("input", "CSA", "Telea", "PatchMatch", "truth")


def find(folder: Path, stem: str) -> Path:
    """The image file of `folder` (searched recursively) whose stem is `stem`."""
    hits = [p for p in folder.rglob("*") if p.stem == stem and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not hits:
        raise SystemExit(f"no image named {stem!r} in {folder}")
    return hits[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="+", help="photo names (file stems) in --images")
    parser.add_argument("--images", type=Path, required=True, help="folder of held-out photos")
    parser.add_argument("--checkpoint", default=None, help="CSA checkpoint (default: the shipped demo model)")
    parser.add_argument("--out", type=Path, default=Path("docs/images/model_card_grid.jpg"))
    args = parser.parse_args()
    model = load_model(args.checkpoint)
    hole = center_half_masks(256)[0][1]
    figure = Figure(figsize=(2.2 * len(COLUMNS), 2.35 * len(args.stems)))
    axes = figure.subplots(len(args.stems), len(COLUMNS), squeeze=False)
    for row, stem in enumerate(args.stems):
        truth = load_image(find(args.images, stem), 256)
        shown = truth.copy()
        shown[hole] = 255
        filled = {"CSA": np.asarray(inpaint(model, truth, hole)), "Telea": BASELINES["telea"](truth, hole),
                  "PatchMatch": BASELINES["patchmatch"](truth, hole)}
        panels = {"input": shown, **filled, "truth": truth}
        for col, name in enumerate(COLUMNS):
            ax = axes[row][col]
            ax.imshow(panels[name])
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=10)
            if name in filled:
                ax.set_xlabel(f"{metrics.psnr(panels[name], truth):.1f} dB / "
                              f"{perceptual.lpips(panels[name], truth):.3f}", fontsize=8)
            elif name == "input":
                ax.set_xlabel(stem, fontsize=8)
    figure.suptitle("centre hole 128x128 at 256 px; under each fill: PSNR / LPIPS (lower is better)", fontsize=9)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=80, pil_kwargs={"quality": 88})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
