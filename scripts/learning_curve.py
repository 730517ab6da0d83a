"""PSNR and LPIPS of every saved step of a training run, on held-out and training photos: a learning curve.

Each checkpoint (the starting weights as step 0, then every `step_*.pt` of the run) fills the same
photos through `inpaint` as users call it, hole blanked, with the 128x128 centre hole and one seeded
15-35 % free-form mask per photo (`csa_lib.eval.evaluate`'s masks). One row per (step, set, mask) goes to
curve.csv as soon as it is measured, so a stopped run keeps what it did and a rerun skips it;
curve.png plots both metrics against the step, held-out and training side by side. Usage:

    python scripts/learning_curve.py --run runs/demo_9 --start data/checkpoints/csa_demo.pt \
        --set heldout=data/training_v2/unseen_by_round8 --set train=data/training_v2/train:60 \
        --out outputs/curve_r9

`NAME=FOLDER:N` takes N photos spread evenly over the sorted folder (every photo without `:N`).
"""
from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from csa_lib.eval import evaluate  # noqa: E402
from csa_lib import imageio, inference  # noqa: E402

MASKS = {"center_half": lambda size: evaluate.center_half_masks(size),
         "freeform": lambda size: evaluate.freeform_masks(size, (0.15, 0.35), seed=0)}
FIELDS = ["step", "set", "mask", "n", "psnr", "lpips", "ssim"]


def spread(paths: list[Path], n: int | None) -> list[Path]:
    """`n` paths spread evenly over `paths` (all of them when n is None or not smaller)."""
    if n is None or n >= len(paths):
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]


def parse_set(text: str) -> tuple[str, Path, int | None]:
    """'NAME=FOLDER[:N]' -> (name, folder, N or None)."""
    name, sep, rest = text.partition("=")
    match = re.fullmatch(r"(.+?)(?::(\d+))?", rest)
    if not sep or not name or match is None or not Path(match.group(1)).is_dir():
        raise SystemExit(f"--set {text!r}: expected NAME=FOLDER or NAME=FOLDER:N with an existing folder")
    return name, Path(match.group(1)), int(match.group(2)) if match.group(2) else None


def checkpoints(run: Path, start: Path | None) -> list[tuple[int, Path]]:
    """[(step, path)]: the starting weights as step 0, then the run's step checkpoints in order."""
    steps = sorted((int(m.group(1)), p) for p in run.glob("step_*.pt") if (m := re.fullmatch(r"step_(\d+)\.pt", p.name)))
    return ([(0, start)] if start is not None else []) + steps


def read_rows(path: Path) -> list[dict]:
    """The rows of an existing curve.csv ([] if there is none)."""
    if not path.exists():
        return []
    with path.open() as f:
        return [{**r, "step": int(r["step"])} for r in csv.DictReader(f)]


def plot(rows: list[dict], out: Path, title: str) -> None:
    """curve.png: PSNR and LPIPS against the step, a line per (set, mask)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (set_name, mask) in sorted({(r["set"], r["mask"]) for r in rows}):
        mine = sorted((r for r in rows if (r["set"], r["mask"]) == (set_name, mask)), key=lambda r: r["step"])
        style = "-" if set_name != "train" else "--"
        for ax, key in zip(axes, ("psnr", "lpips")):
            ax.plot([r["step"] for r in mine], [float(r[key]) for r in mine], style, marker="o", label=f"{set_name}, {mask}")
    for ax, label in zip(axes, ("PSNR (dB), higher is better", "LPIPS (ST AlexNet), lower is better")):
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder holding step_*.pt")
    parser.add_argument("--start", type=Path, default=None, help="the weights the run started from (plotted as step 0)")
    parser.add_argument("--set", dest="sets", action="append", required=True, help="NAME=FOLDER[:N], repeatable")
    parser.add_argument("--masks", default="center_half,freeform", help=f"comma-separated, from {', '.join(MASKS)}")
    parser.add_argument("--steps", default=None, help="only these steps, comma-separated (default: every one)")
    parser.add_argument("--size", type=int, default=256, help="photos are centre-cropped and resized to this")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sets = [parse_set(s) for s in args.sets]
    masks = [m.strip() for m in args.masks.split(",")]
    unknown = [m for m in masks if m not in MASKS]
    if unknown:
        raise SystemExit(f"--masks: unknown {unknown}; choose from {', '.join(MASKS)}")
    wanted = None if args.steps is None else {int(s) for s in args.steps.split(",")}
    table = args.out / "curve.csv"
    rows = read_rows(table)
    done = {(r["step"], r["set"], r["mask"]) for r in rows}
    photos = {name: [(p.stem, evaluate.load_image(p, args.size)) for p in spread(imageio.list_images(folder), n)]
              for name, folder, n in sets}
    for step, path in checkpoints(args.run, args.start):
        if wanted is not None and step not in wanted:
            continue
        todo = [(s, m) for s, _, _ in sets for m in masks if (step, s, m) not in done]
        if not todo:
            continue
        method = {"csa": evaluate.csa_inpainter(inference.load_model(path, device="cpu"))}
        for set_name, mask in todo:
            measured = evaluate.run_evaluation(photos[set_name], MASKS[mask](args.size), method, progress=False)
            row = {"step": step, "set": set_name, "mask": mask, "n": len(measured),
                   **{k: float(np.mean([r[k] for r in measured])) for k in ("psnr", "lpips", "ssim")}}
            rows.append(row)
            new = not table.exists()
            with table.open("a", newline="") as f:
                writer = csv.DictWriter(f, FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow(row)
            print(f"step {step:>5} {set_name:>8} {mask:>11}: PSNR {row['psnr']:.2f}  LPIPS {row['lpips']:.4f}", flush=True)
        plot(rows, args.out / "curve.png", f"{args.run.name}: held-out vs training photos")


if __name__ == "__main__":
    main()
