"""Training step at the demo configuration with and without the VGG16 terms, interleaved in one process.

VGG-free is how rounds 0-8 trained; "VGG on" is round 9's recipe: the trained shift-tolerant VGG16 of
the stlpips-pytorch wheel (`--vgg-weights stlpips`), the consistency loss, the feature patch
discriminator and the perceptual and style terms. Prints medians of interleaved rounds and the ratio.

    python benchmarks/bench_vgg_step.py [--rounds 3] [--threads 1] [--image-size 128 --batch 8]
"""
from __future__ import annotations

import sys
import tempfile
import warnings

from bench_train import bench_parser, interleaved_medians, make_batch, parse_bench_args

from csa_lib.config import Config
from csa_lib.train import Trainer

ROUND9 = dict(use_vgg=True, vgg_weights="stlpips", lambda_consistency=1e-5, lambda_perceptual=250.0,
              lambda_style=5e5, lambda_adv=0.02, l1_hole_weight=6.0)


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__, image_size=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    p.add_argument("--batch", type=int, default=8)
    args = parse_bench_args(p, argv)
    base = dict(image_size=args.image_size, ngf=16, ndf=16, batch_size=args.batch, mask_type="boxes")
    variants = {"VGG-free (rounds 0-8)": Config(**base, use_vgg=False, vgg_weights=None,
                                                checkpoints_dir=tempfile.mkdtemp()),
                "VGG on (round 9)": Config(**base, **ROUND9, checkpoints_dir=tempfile.mkdtemp())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainers = {name: Trainer(cfg, device="cpu") for name, cfg in variants.items()}
    batch = make_batch(args.batch, args.image_size, "random")
    medians = interleaved_medians({name: (lambda t=trainer: t.train_step(batch)) for name, trainer in trainers.items()},
                                  args.rounds, args.steps, args.batch, f"{args.image_size} px, ngf = ndf = 16")
    free = medians["VGG-free (rounds 0-8)"][0]
    for name, (med, _) in medians.items():
        print(f"  {name:22s} {med:7.3f} s/step  {args.batch / med:6.2f} img/s  x{med / free:5.2f} the VGG-free step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
