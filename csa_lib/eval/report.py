"""Reports of an evaluation: summary.md (means, wins, colour cast on plain holes) and strips.png.

Rows are ``csa_lib.eval.evaluate.run_evaluation``'s: one dict per image x mask x method with ``image``,
``mask``, ``method``, ``bucket``, the metrics of ``csa_lib.eval.metrics.METRIC_KEYS``, ``lpips`` and
``time_s``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from csa_lib import holes
from csa_lib.eval.metrics import psnr, summarise, to_csv, to_markdown
from csa_lib.notebook import viz

SUMMARY_COLUMNS = ("n", "hole_ratio", "psnr", "ssim", "lpips", "l1", "l2", "tv",
                   "psnr_hole", "ssim_hole", "l1_hole", "l2_hole", "tv_hole", "time_s")
PLAIN_L1 = 0.02  # a hole is "plain" where the reference's hole L1 (on [0, 1], i.e. levels / 255) is below this


def _by_pair(rows: Sequence[Mapping[str, Any]], key: str) -> dict[tuple[str, str], dict[str, float]]:
    """{(image, mask): {method: float(row[key])}} over the rows that have ``key``."""
    by_pair: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        if key in r:
            by_pair.setdefault((r["image"], r["mask"]), {})[r["method"]] = float(r[key])
    return by_pair


def wins_markdown(rows: Sequence[Mapping[str, Any]], reference: str = "telea", margin_db: float = 3.0) -> str:
    """Per method: pairs it wins (best PSNR), mean gain over ``reference``, pairs far below it; LPIPS when rows have it.

    Ties go to every tied method. Answers "how often is it the best?" and "how badly can it fail?",
    which means alone hide. With an ``lpips`` in every row, two columns more: the mean LPIPS and the
    pairs won by LPIPS (lowest).
    """
    by_pair = _by_pair(rows, "psnr")
    with_lpips = bool(rows) and all("lpips" in r for r in rows)
    lpips_by_pair = _by_pair(rows, "lpips") if with_lpips else {}
    methods = list(dict.fromkeys(r["method"] for r in rows))
    header = f"| method | wins | of | mean PSNR - {reference} (dB) | worst (dB) | pairs > {margin_db:g} dB below {reference} |"
    rule = "|---|---|---|---|---|---|"
    if with_lpips:
        header, rule = header + " mean LPIPS | wins by LPIPS |", rule + "---|---|"
    lines = [header, rule]
    for m in methods:
        pairs = [v for v in by_pair.values() if m in v]
        wins = sum(1 for v in pairs if v[m] >= max(v.values()) - 1e-9)
        gaps = [v[m] - v[reference] for v in pairs if reference in v]
        if gaps:
            below = sum(1 for g in gaps if g < -margin_db)
            line = f"| {m} | {wins} | {len(pairs)} | {np.mean(gaps):+.2f} | {min(gaps):+.2f} | {below} |"
        else:
            line = f"| {m} | {wins} | {len(pairs)} | | | |"
        if with_lpips:
            scores = [v for v in lpips_by_pair.values() if m in v]
            lpips_wins = sum(1 for v in scores if v[m] <= min(v.values()) + 1e-9)
            line += f" {np.mean([v[m] for v in scores]):.4f} | {lpips_wins} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _plain_pairs(rows: Sequence[Mapping[str, Any]], reference: str, max_l1: float) -> set[tuple[str, str]]:
    """(image, mask) pairs where ``reference``'s ``l1_hole`` is under ``max_l1``."""
    return {pair for pair, v in _by_pair(rows, "l1_hole").items() if reference in v and v[reference] < max_l1}


def plain_hole_casts(rows: Sequence[Mapping[str, Any]], reference: str = "telea",
                     max_l1: float = PLAIN_L1) -> list[dict[str, Any]]:
    """Colour cast on plain holes: pairs where ``reference``'s ``l1_hole`` < ``max_l1``; per method n, mean and max cast.

    ``l1_hole`` is the mean absolute error over the hole on the [0, 1] scale (levels / 255), so 0.02
    is about 5 levels: holes a smooth fill gets nearly right (walls, skies). The cast (levels,
    ``metrics.colour_cast``) is the tint a fill adds there. -> [{"method", "n", "mean_cast", "max_cast"}].
    """
    plain = _plain_pairs(rows, reference, max_l1)
    casts: dict[str, list[float]] = {m: [] for m in dict.fromkeys(r["method"] for r in rows)}
    for r in rows:
        if (r["image"], r["mask"]) in plain and "colour_cast" in r:
            casts[r["method"]].append(float(r["colour_cast"]))
    return [{"method": m, "n": len(v), "mean_cast": float(np.mean(v)) if v else float("nan"),
             "max_cast": float(np.max(v)) if v else float("nan")} for m, v in casts.items()]


def plain_holes_markdown(rows: Sequence[Mapping[str, Any]], reference: str = "telea", max_l1: float = PLAIN_L1) -> str:
    """The ``plain_hole_casts`` table in Markdown, with a line saying how plain holes are chosen."""
    n_plain = len(_plain_pairs(rows, reference, max_l1))
    intro = (f"{n_plain} image x mask pairs where {reference}'s hole L1 is under {max_l1:g} (mean absolute error "
             f"on [0, 1], i.e. under {max_l1 * 255:.1f} levels): walls, skies and other plain holes. Colour cast: "
             "the largest per-channel mean of (result - truth) over the hole, in levels (0-255), lower is better.")
    if not n_plain:
        return intro + "\n"
    table = plain_hole_casts(rows, reference, max_l1)
    return intro + "\n\n" + to_markdown(table, columns=["method", "n", "mean_cast", "max_cast"], floatfmt=".2f")


def summary_markdown(rows: Sequence[Mapping[str, Any]], methods: Sequence[str] | None = None) -> str:
    """Markdown report: means by method x bucket and by method, wins, and the colour cast on plain holes."""
    images = len({r["image"] for r in rows})
    pairs = len({(r["image"], r["mask"]) for r in rows})
    methods = methods or list(dict.fromkeys(r["method"] for r in rows))
    columns = [c for c in SUMMARY_COLUMNS if c == "n" or any(c in r for r in rows)]
    metric_columns = [c for c in columns if c != "n"]
    by_bucket = summarise(rows, by=("method", "bucket"), metrics=metric_columns)
    by_method = summarise(rows, by=("method",), metrics=metric_columns)
    with_reference = any(r["method"] == "telea" for r in rows)
    return "\n".join([
        "# Inpainting evaluation",
        "",
        f"{images} images, {pairs} image x mask pairs, methods: {', '.join(methods)}.",
        "PSNR (dB) and SSIM: higher is better. LPIPS (shift-tolerant AlexNet, `stlpips-pytorch`, whole image):",
        "perceptual distance, lower is better. L1, L2 (on [0, 1]): lower is better. TV: total variation of",
        "the result (mean |dx| + mean |dy| on [0, 1]); lower is smoother, not necessarily better.",
        "`_hole` columns use hole pixels only (TV: differences touching the hole). `time_s`: seconds per image.",
        "",
        "## By method and hole-area bucket",
        "",
        to_markdown(by_bucket, columns=["method", "bucket", *columns]),
        "## By method, all masks",
        "",
        to_markdown(by_method, columns=["method", *columns]),
        *(["## Wins (best PSNR, and best LPIPS, per image x mask pair)", "", wins_markdown(rows),
           "## Colour cast on plain holes", "", plain_holes_markdown(rows)] if with_reference else []),
    ])


def write_report(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, methods: Sequence[str] | None = None) -> dict[str, Path]:
    """Write results.csv and summary.md into ``out_dir`` -> {"csv": path, "summary": path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = to_csv(rows, out_dir / "results.csv")
    summary_path = out_dir / "summary.md"
    summary_path.write_text(summary_markdown(rows, methods))
    return {"csv": csv_path, "summary": summary_path}


def plot_strips(examples: Sequence[Mapping[str, Any]], methods: Sequence[str]):
    """Figure with one row per example: input with hole (white), mask, each method, ground truth.

    Under each method: its PSNR, and its LPIPS where the example has ``lpips`` ({method: value}).
    """
    columns = ["input", "mask", *methods, "ground truth"]
    figure = Figure(figsize=(2.0 * len(columns), 2.3 * len(examples)), layout="constrained")
    axes = figure.subplots(len(examples), len(columns), squeeze=False)
    for row, example in enumerate(examples):
        truth, hole = example["truth"], example["hole"]
        shown = viz.masked_input(truth, hole)  # (H, W, 3) white hole
        panels = [shown, np.asarray(holes.mask_image(hole)), *(example["outputs"][m] for m in methods), truth]
        for col, (ax, panel) in enumerate(zip(axes[row], panels)):
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
            if 2 <= col < 2 + len(methods):
                method = methods[col - 2]
                label = f"PSNR {psnr(panel, truth):.2f}"
                if method in example.get("lpips", {}):
                    label += f", LPIPS {example['lpips'][method]:.3f}"
                ax.set_xlabel(label, fontsize=7)
        axes[row][0].set_ylabel(f"{example['image']}\n{example['bucket']} hole", fontsize=8)
    return figure
