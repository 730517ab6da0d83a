"""Evaluate inpainting methods (CSA and classical baselines) on a folder of images.

``run_evaluation`` is the library entry point (the CLI and notebooks call it); a method is any
callable ``fn(image uint8 (H, W, 3), hole bool (H, W)) -> uint8 (H, W, 3)``. It writes
``results.csv`` (one row per image x mask x method: PSNR, SSIM, L1, L2, TV, colour cast and
shift-tolerant LPIPS), ``summary.md`` (``csa_lib.eval.report``: means by method and hole-area bucket,
wins by PSNR and LPIPS, colour cast on plain holes) and ``strips.png`` (a few examples side by side).

CLI: ``python -m csa_lib.cli.evaluate --images data/samples/images --masks irregular --methods csa,telea``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from csa_lib import holes, imageio, inference
from csa_lib.eval import perceptual
from csa_lib.eval.baselines import BASELINES, Inpainter
from csa_lib.cli.conventions import Parser, UserError, run_cli
from csa_lib.masks import center_mask, irregular_mask, random_irregular_mask
from csa_lib.eval.metrics import (
    HOLE_BUCKETS,
    METRIC_KEYS,
    as_hole,
    bucket_label,
    bucket_of,
    compute_all,
)
from csa_lib.eval.report import (  # noqa: F401  (re-exported: evaluate.summary_markdown etc. are public)
    SUMMARY_COLUMNS,
    plain_hole_casts,
    plain_holes_markdown,
    plot_strips,
    summary_markdown,
    wins_markdown,
    write_report,
)

IMAGE_SUFFIXES = imageio.IMAGE_EXTENSIONS  # the library's one list
DEFAULT_METHODS = ("csa", "telea", "navier_stokes", "biharmonic", "patchmatch", "fsr_fast")
CSA_METHODS = {"csa": "poisson", "csa_full": "poisson_full", "csa_raw": "none"}  # method name -> inference.inpaint's blend
ROW_METRICS = (*METRIC_KEYS, "lpips")  # every row's metrics: compute_all's and the perceptual distance

MaskList = Sequence[tuple[str, Any]]
EvalMasks = MaskList | Callable[[int, str], MaskList]  # not csa_lib.masks.MaskSource: a list, or one per image


def _name(path: Path, folder: str | Path) -> str:
    """A file's name in the results: its stem, with its subfolders (``city/0001``) when it is in one."""
    return path.relative_to(folder).with_suffix("").as_posix()


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Read an image (``imageio.read_image``), centre-crop it to a square, resize (bicubic) -> uint8 (size, size, 3)."""
    fitted = imageio.fit(Image.fromarray(imageio.read_image(path)), size, Image.Resampling.BICUBIC)
    return np.asarray(fitted, dtype=np.uint8).copy()  # (size, size, 3)


def load_images(folder: str | Path, size: int, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """Every image in a folder and its subfolders as (name, uint8 (size, size, 3)), sorted by path."""
    return [(_name(p, folder), load_image(p, size)) for p in imageio.find_images(folder)[:limit]]


def load_masks(folder: str | Path, size: int, invert: bool = False) -> list[tuple[str, np.ndarray]]:
    """Mask images in a folder (white = hole, ``imageio``'s rule; ``invert``: black = hole) -> (stem, bool (size, size))."""
    masks = []
    for path in imageio.find_images(folder, "mask"):
        hole = holes.fit_mask(path, size)  # (size, size) bool, as training reads a mask folder
        masks.append((_name(path, folder), ~hole if invert else hole))
    return masks


def center_masks(size: int) -> list[tuple[str, np.ndarray]]:
    """The centre square hole from csa_lib.masks.center_mask -> [("center", bool (size, size))]."""
    return [("center", as_hole(np.asarray(center_mask(size))))]


def center_half_masks(size: int) -> list[tuple[str, np.ndarray]]:
    """A centre square hole of half the side: rows and columns size/4 .. 3*size/4 - 1 (64..191 at 256 px).

    A quarter of the image, a little larger than the original's 120 x 120 training hole, so a model
    that only memorised that one square is caught out.
    """
    return [("center_half", as_hole(np.asarray(center_mask(size, overlap=0))))]


def freeform_masks(size: int, hole_range: tuple[float, float] = (0.15, 0.35), seed: int = 0,
                   per_image: int = 1) -> Callable[[int, str], MaskList]:
    """Mask source: ``per_image`` seeded free-form masks (strokes and boxes) with a hole ratio in ``hole_range``.

    Image ``index`` always gets the same masks (its generator is seeded with ``(seed, index)``), so every
    method and every model sees exactly the same holes.
    """

    def masks_for(index: int, name: str) -> MaskList:
        rng = np.random.default_rng([seed, index])
        return [(f"freeform_{k}", random_irregular_mask(size, rng, hole_range)) for k in range(per_image)]

    return masks_for


def irregular_masks(size: int, per_bucket: int = 1, seed: int = 0) -> Callable[[int, str], MaskList]:
    """Mask source for run_evaluation: ``per_bucket`` procedural masks per HOLE_BUCKETS bucket, new for each image.

    Image ``index`` always gets the same masks (its generator is seeded with ``(seed, index)``).
    """
    def masks_for(index: int, name: str) -> MaskList:
        """Masks of image ``index``: [(name, float32 (size, size), 1 = hole)]."""
        rng = np.random.default_rng([seed, index])
        return [
            (f"irregular_{bucket_label(bucket)}_{k}", irregular_mask(size, rng, bucket))
            for bucket in HOLE_BUCKETS
            for k in range(per_bucket)
        ]

    return masks_for


def csa_method(checkpoint: str | Path | None = None, blend: str = "poisson") -> Inpainter:
    """Load a CSA generator via csa_lib.inference (None = the shipped demo model) -> an Inpainter."""
    model = inference.load_model(checkpoint) if checkpoint is not None else inference.load_model()
    return csa_inpainter(model, blend)


def csa_inpainter(model: Any, blend: str = "poisson") -> Inpainter:
    """An Inpainter around a loaded CSAGenerator: the hole is blanked first, so no truth reaches the model.

    `blend` goes to `inference.inpaint` ("poisson", the default, or "none" for the raw output).
    """
    def csa(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """CSA inpainting: uint8 (H, W, 3), (H, W) hole -> uint8 (H, W, 3), known pixels kept."""
        hole = as_hole(mask)  # (H, W)
        masked = holes.composite(np.zeros_like(image), image, hole)  # (H, W, 3), no truth in hole
        return np.asarray(inference.inpaint(model, masked, hole, blend=blend))  # known pixels pasted back there

    return csa


def build_methods(names: str | Sequence[str] = DEFAULT_METHODS, checkpoint: str | Path | None = None) -> dict[str, Inpainter]:
    """Method names (a BASELINES key or a CSA_METHODS key; comma-separated string or list) -> {name: Inpainter}.

    "csa" is `inference.inpaint` as users call it (Poisson-blended, detail no rougher than around the
    hole); "csa_full" blends all of the fill's detail in (`blend="poisson_full"`); "csa_raw" pastes
    the network's output without the blend (`blend="none"`), the paper's own output.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    methods: dict[str, Inpainter] = {}
    for name in names:
        if name in CSA_METHODS:
            methods[name] = csa_method(checkpoint, CSA_METHODS[name])
        elif name in BASELINES:
            methods[name] = BASELINES[name]
        else:
            raise ValueError(f"unknown method {name!r}; choose from {', '.join([*CSA_METHODS, *BASELINES])}")
    return methods


def _named(images: Mapping[str, Any] | Sequence[Any]) -> list[tuple[str, Any]]:
    """Images as a dict, (name, image) pairs or bare arrays -> [(name, image)]."""
    if isinstance(images, Mapping):
        return list(images.items())
    named = []
    for i, item in enumerate(images):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            named.append(item)
        else:
            named.append((f"image_{i:03d}", item))
    return named


def run_evaluation(
    images: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]] | Sequence[np.ndarray],
    masks: EvalMasks,
    methods: Mapping[str, Inpainter],
    out_dir: str | Path | None = None,
    n_strips: int = 4,
    progress: bool = True,
    on_output: Callable[[str, str, str, np.ndarray], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every method on every image x mask; one row of metrics per triple; writes files if ``out_dir``.

    Args:
        images: uint8 (H, W, 3) RGB images, as {name: image}, [(name, image)] or [image].
        masks: [(name, mask (H, W), 1 = hole)] used for every image, or a callable
            ``(image_index, image_name) -> [(name, mask)]`` (see ``irregular_masks``).
        methods: {name: fn(image uint8 (H, W, 3), hole bool (H, W)) -> uint8 (H, W, 3)}.
        out_dir: where results.csv, summary.md and strips.png go (None: nothing written).
        n_strips: rows in strips.png (different hole buckets first).
        on_output: called as ``on_output(image_name, mask_name, method, output uint8 (H, W, 3))`` after
            each method's run, so a caller can keep or save the results without running a method twice.
    Returns:
        Rows with image, mask, method, bucket, hole_ratio, METRIC_KEYS, lpips (``perceptual.lpips``)
        and time_s (seconds).
    """
    named = _named(images)
    rows: list[dict[str, Any]] = []
    strips: list[dict[str, Any]] = []  # examples kept for strips.png: new buckets first ...
    spares: list[dict[str, Any]] = []  # ... then the first others
    for index, (name, image) in enumerate(tqdm(named, desc="evaluate", unit="image", disable=not progress)):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"image {name!r} must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
        for mask_name, mask in masks(index, name) if callable(masks) else masks:
            hole = as_hole(mask)  # (H, W)
            bucket = bucket_of(float(hole.mean()))
            outputs, distances = {}, {}
            for method, fn in methods.items():
                start = time.perf_counter()
                output = np.asarray(fn(image.copy(), hole.copy()))  # (H, W, 3)
                elapsed = time.perf_counter() - start
                if output.shape != image.shape:
                    raise ValueError(f"method {method!r} returned shape {output.shape}, expected {image.shape}")
                outputs[method] = output.astype(np.uint8)
                if on_output is not None:
                    on_output(name, mask_name, method, outputs[method])
                distances[method] = perceptual.lpips(outputs[method], image)
                rows.append({"image": name, "mask": mask_name, "method": method, "bucket": bucket,
                             **compute_all(outputs[method], image, hole), "lpips": distances[method],
                             "time_s": elapsed})
            example = {"image": name, "mask": mask_name, "bucket": bucket, "truth": image,
                       "hole": hole, "outputs": outputs, "lpips": distances}
            if len(strips) < n_strips and bucket not in {s["bucket"] for s in strips}:
                strips.append(example)
            elif len(spares) < n_strips:
                spares.append(example)
    strips = (strips + spares)[:n_strips]
    if out_dir is not None:
        write_report(rows, out_dir, list(methods))
        if strips:
            figure = plot_strips(strips, list(methods))
            figure.savefig(Path(out_dir) / "strips.png", dpi=100)
    return rows


def _parser() -> argparse.ArgumentParser:
    """Command-line arguments of ``python -m csa_lib.cli.evaluate``."""
    parser = Parser(prog="csa-evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="data/samples/images", help="folder of images (searched recursively)")
    parser.add_argument("--masks", default="irregular",
                        help="'center' (the original's 120 px square at 256 px), 'center_half' (rows/cols size/4..3size/4-1), "
                             "'irregular' (procedural, per hole bucket), 'freeform' (seeded, --hole-range) "
                             "or a folder of mask images (white = hole, searched recursively)")
    parser.add_argument("--hole-range", default="0.15,0.35",
                        help="hole ratio range of the 'freeform' masks, 'lo,hi'")
    parser.add_argument("--invert-masks", action="store_true", help="mask folder images use black = hole")
    parser.add_argument("--checkpoint", default=None, help="CSA checkpoint (default: the shipped demo model)")
    parser.add_argument("--size", type=int, default=256, help="images are centre-cropped and resized to this")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated, from {', '.join([*CSA_METHODS, *BASELINES])} (csa_full: Poisson blend without the detail gain; "
                             "csa_raw: no blend; patchmatch: pypatchmatch, patch radius 3, seed 0; fsr_fast: OpenCV contrib's "
                             "frequency-selective reconstruction)")
    parser.add_argument("--out", default="outputs/eval", help="output folder")
    parser.add_argument("--per-bucket", type=int, default=1, help="irregular masks per hole bucket per image")
    parser.add_argument("--max-images", type=int, default=None, help="use only the first N images (default: all)")
    parser.add_argument("--strips", type=int, default=4, help="examples shown in strips.png")
    parser.add_argument("--seed", type=int, default=0, help="seed of the irregular masks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: evaluate, write results.csv, summary.md, strips.png and print the summary."""
    args = _parser().parse_args(argv)
    return run_cli("csa-evaluate", args.debug, lambda: _evaluate(args))


def _evaluate(args: argparse.Namespace) -> int:
    if args.size < 16:
        raise UserError(f"--size must be at least 16 pixels, got {args.size}")
    methods = build_methods(args.methods, args.checkpoint)  # a misspelt method fails before any image is read
    images = load_images(args.images, args.size, args.max_images)
    if args.masks == "center":
        masks: EvalMasks = center_masks(args.size)
    elif args.masks == "center_half":
        masks = center_half_masks(args.size)
    elif args.masks == "irregular":
        masks = irregular_masks(args.size, args.per_bucket, args.seed)
    elif args.masks == "freeform":
        lo, hi = (float(v) for v in args.hole_range.split(","))
        masks = freeform_masks(args.size, (lo, hi), args.seed, args.per_bucket)
    else:
        masks = load_masks(args.masks, args.size, args.invert_masks)
    rows = run_evaluation(images, masks, methods, args.out, n_strips=args.strips)
    print(summary_markdown(rows, list(methods)))
    print(f"wrote {len(rows)} rows to {Path(args.out) / 'results.csv'}, summary.md and strips.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
