"""`make demo`: inpaint the sample photos with the shipped weights and save a comparison figure.

Usage: python -m csa_lib.cli.demo (also `csa-demo`) [--checkpoint PATH] [--samples data/samples] [--out outputs]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no GUI backend to pick, nothing to close
from PIL import Image

from .. import holes, imageio
from ..eval.baselines import telea
from ..inference import inpaint, load_model
from ..notebook import viz
from .conventions import Parser, run_cli

ROOT = Path(__file__).resolve().parents[2]


def run_demo(checkpoint: str | None, samples: Path, out_dir: Path) -> Path:
    """Inpaint every sample image with every sample mask (CSA and OpenCV Telea); return the figure path."""
    images = imageio.list_images(samples / "images", recursive=False)
    masks = imageio.list_images(samples / "masks", recursive=False)
    if not images or not masks:
        raise FileNotFoundError(f"expected images in {samples / 'images'} and masks in {samples / 'masks'} "
                                f"({', '.join(imageio.IMAGE_EXTENSIONS)})")
    model = load_model(checkpoint)
    print(f"model: ngf={model.ngf}, trained at {model.image_size}px, on {next(model.parameters()).device}")
    pairs = [(img, masks[i % len(masks)]) for i, img in enumerate(images)]
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = ["input", "mask", "CSA (ours)", "OpenCV Telea", "original"]
    fig = Figure(figsize=(3 * len(cols), 3 * len(pairs)))
    axes = fig.subplots(len(pairs), len(cols), squeeze=False)
    start = time.perf_counter()
    for row, (img_path, mask_path) in enumerate(pairs):
        image = imageio.read_image(img_path)  # (H, W, 3) uint8
        mask = holes.fit_mask(mask_path, image.shape[1::-1])  # (H, W) bool
        result = np.asarray(inpaint(model, image, mask))
        Image.fromarray(result).save(out_dir / f"{img_path.stem}_{mask_path.stem}_csa.png")
        panels = [viz.masked_input(image, mask), mask, result, telea(image, mask), image]
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(cols[col])
        axes[row, 0].set_ylabel(f"{img_path.stem}\n{mask_path.stem}")
    fig.tight_layout()
    figure = out_dir / "demo.png"
    fig.savefig(figure, dpi=80)
    print(f"inpainted {len(pairs)} images in {time.perf_counter() - start:.1f} s")
    return figure


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = Parser(prog="csa-demo", description="Inpaint the sample photos and save a comparison figure.")
    parser.add_argument("--checkpoint", default=None, help="checkpoint path (default: the shipped demo model)")
    parser.add_argument("--samples", type=Path, default=ROOT / "data" / "samples",
                        help="folder with images/ and masks/")
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="where demo.png and the results go")
    args = parser.parse_args(argv)

    def body() -> int:
        figure = run_demo(args.checkpoint, args.samples, args.out)
        print(f"figure written to {figure.resolve()}")
        return 0

    return run_cli("csa-demo", args.debug, body)


if __name__ == "__main__":
    sys.exit(main())
