"""The licence lists of scripts/build_demo_data.py: ``sources.csv`` (one row per photo or crop set) and
``SOURCES.md`` (a table of every source with its licences and split, then every file); and the contact
sheet that ``--contact-sheet`` writes to re-check the allow-list by eye after a package update.
"""
from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from pathlib import Path

from PIL import Image, ImageDraw

from demo_packages import download_debs, extract_deb
from demo_sources import DEBIAN_SOURCES

FIELDS = ["split", "unseen_by_round8", "file", "source", "package", "version", "copyright", "license", "outputs"]

SPLIT_WORDS = {
    "train": "train (random crops; `plain_*` crops are plain regions of these photos)",
    "heldout": "eval/ (photo group held out, round-8 rule)",
    "eval": "eval/ (whole source held out)",
    "withheld": "neither: held out by round 8, so kept out of training (unseen_by_round8/ only)",
}


def source_summary(rows: list[dict]) -> list[dict]:
    """Per package: its splits (photo counts), how many photos are in unseen_by_round8 and its licences."""
    by_pkg: dict[str, dict] = defaultdict(lambda: {"splits": Counter(), "unseen": 0, "licenses": set()})
    for r in rows:
        if r["file"].startswith("plain crop") or r["outputs"].startswith("train/plain_"):
            continue  # plain crops are listed with their photos' rows
        s = by_pkg[r["package"]]
        s["splits"][r["split"]] += 1
        s["unseen"] += r.get("unseen_by_round8") == "yes"
        s["licenses"].add(r["license"])
    return [{"package": p, **v} for p, v in sorted(by_pkg.items())]


def write_sources(out: Path, rows: list[dict]) -> None:
    with open(out / "sources.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    lines = [
        "# Sources of the demo training / evaluation images",
        "",
        "Built by `scripts/build_demo_data.py`. Training patches are crops of resized copies of the",
        "photos below (modified works); evaluation images are centre crops resized to a square.",
        "Keep this file with the images: the CC-BY / CC-BY-SA / GPL licences require attribution",
        "(and share-alike for CC-BY-SA and GPL) if you redistribute them. The licence texts are in",
        "each package's `/usr/share/doc/<package>/copyright`.",
        "",
        "`unseen_by_round8/` (where built) holds the photos the shipped round-8 model never trained on: the",
        "105 it was evaluated on and every photo of a source first used after it. It is the only fair test",
        "of a model fine-tuned from round 8.",
        "",
        "## Every source",
        "",
        "| package | photos by split | in unseen_by_round8 | licences |",
        "|---|---|---|---|",
    ]
    for s in source_summary(rows):
        splits = ", ".join(f"{k} {v}" for k, v in sorted(s["splits"].items()))
        if s["package"] == "build_demo_data.py":
            splits = "train (synthetic smooth images, not photos)"
        lines.append(f"| {s['package']} | {splits} | {s['unseen']} | {'; '.join(sorted(s['licenses']))} |")
    lines += ["", "Splits: " + "; ".join(f"**{k}**: {v}" for k, v in SPLIT_WORDS.items()) + ".", "",
              "## Every file", "",
              "| split | unseen by round 8 | file | package (version) | copyright | licence | images |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        pkg = f"{r['package']} ({r['version']})" if r.get("version") else r["package"]
        lines.append(f"| {r['split']} | {r.get('unseen_by_round8', '')} | {r['file']} | {pkg} | {r['copyright']} "
                     f"| {r['license']} | {r['outputs']} |")
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def contact_sheet(cache: Path, path: Path, cell: tuple[int, int] = (300, 220), cols: int = 5) -> int:
    debs = download_debs([s.package for s in DEBIAN_SOURCES], cache / "debs")
    items = []
    for src in DEBIAN_SOURCES:
        d = extract_deb(debs[src.package], cache / "extracted" / src.package) / src.image_dir
        for p in sorted(d.iterdir()):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                tag = "USED" if p.name in src.photos else ("excluded" if p.name in src.excluded else "NEW?")
                items.append((p, tag))
    W, H = cell
    sheet = Image.new("RGB", (cols * W, math.ceil(len(items) / cols) * H), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (p, tag) in enumerate(items):
        img = Image.open(p)
        size = img.size
        img.draft("RGB", (W, H))
        img = img.convert("RGB")
        img.thumbnail((W - 6, H - 24))
        x, y = (i % cols) * W, (i // cols) * H
        sheet.paste(img, (x + 3, y + 3))
        draw.text((x + 3, y + H - 20), f"[{tag}] {p.name[:30]} {size[0]}x{size[1]}",
                  fill="black" if tag == "USED" else "red")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return len(items)
