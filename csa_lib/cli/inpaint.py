"""Inpaint one photo with one mask: `python -m csa_lib.cli.inpaint IMAGE MASK -o OUT` (also `csa-inpaint`).

The mask is an image of the photo's size; a pixel is a hole when it is at least half intensity
(>= 128 in an 8-bit mask, 1 in a 0/1 mask), the README's "The mask rule". A mask that looks like a
photo, or one with no hole, gives a warning. The result has the photo's size, its known pixels unchanged; `--blend none` keeps the network's raw fill instead of the Poisson blend.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image

from .conventions import Parser, UserError, device, run_cli
from ..inference import BLENDS, inpaint, load_model


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `csa-inpaint`."""
    parser = Parser(prog="csa-inpaint", description="Fill the hole of one photo. Mask rule: a mask pixel is a hole when it "
                    "is at least half intensity, >= 128 in an 8-bit mask (white = hole, black = known).")
    parser.add_argument("image", type=Path, help="the photo (any format Pillow reads)")
    parser.add_argument("mask", type=Path, help="the mask, same size as the photo: hole where it is at least half intensity, "
                             ">= 128 in 8-bit masks (>= 32768 in 16-bit ones, 1 in a 0/1 mask)")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help="where the result goes (.png, .jpg, .webp, ...); never the photo or the mask")
    parser.add_argument("--checkpoint", default=None,
                        help="our checkpoint or run folder, or the original's *_net_G.pth (default: the shipped demo model)")
    parser.add_argument("--blend", choices=BLENDS, default="poisson",
                        help="poisson: blend the fill in without a seam, no rougher than its surroundings; "
                             "poisson_full: blend all of the fill's detail in; none: the network's raw output")
    parser.add_argument("--device", type=device, default=None, help="cpu, cuda, ... (default: CUDA when available)")
    return parser


def _check_paths(args: argparse.Namespace) -> None:
    for what, path in (("photo", args.image), ("mask", args.mask)):
        if not path.is_file():
            raise UserError(f"{what} {path} does not exist or is not a file")
    out = args.out
    if out.resolve() in (args.image.resolve(), args.mask.resolve()):
        raise UserError(f"-o {out} would overwrite the input; choose another file name")
    if out.suffix.lower() not in Image.registered_extensions():
        raise UserError(f"-o {out}: unknown image format {out.suffix or '(no suffix)'}; use .png or .jpg")
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: folder {out.parent} does not exist")


def _inpaint(args: argparse.Namespace) -> int:
    _check_paths(args)
    start = time.perf_counter()
    model = load_model(args.checkpoint, device=args.device)
    result = inpaint(model, args.image, args.mask, blend=args.blend)
    result.save(args.out)
    print(f"wrote {args.out} ({result.width}x{result.height}, blend {args.blend}) in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; user errors are one line on stderr and exit status 2 (`--debug`: traceback)."""
    args = build_parser().parse_args(argv)
    return run_cli("csa-inpaint", args.debug, lambda: _inpaint(args))


if __name__ == "__main__":
    sys.exit(main())
