"""Mask contract: centre geometry, irregular buckets, file masks, MaskSource, strokes, apply/ratio."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from csa_lib import masks, recorded_strokes
from csa_lib.masks import (
    HOLE_BUCKETS, MaskSource, apply_mask, center_mask, hole_ratio, irregular_mask, load_mask,
    random_irregular_mask, stroke_mask,
)
from csa_lib.recorded_strokes import strokes_to_mask
from csa_lib.eval.metrics import bucket_label, bucket_of


# --- centre mask -------------------------------------------------------------------------------

def test_center_mask_256_matches_original_geometry():
    mask = center_mask(256)
    assert mask.shape == (1, 256, 256) and mask.dtype == torch.float32
    rows = torch.nonzero(mask[0].any(dim=1)).flatten()
    cols = torch.nonzero(mask[0].any(dim=0)).flatten()
    assert rows.tolist() == list(range(68, 188))
    assert cols.tolist() == list(range(68, 188))
    assert int(mask.sum()) == 14400  # 120 x 120, filled
    assert set(mask.unique().tolist()) == {0.0, 1.0}


def test_center_mask_scales_with_size():
    mask = center_mask(64)  # overlap 64 // 64 = 1 -> rows/cols 17..46
    hole = torch.zeros(64, 64)
    hole[17:47, 17:47] = 1
    assert torch.equal(mask[0], hole)
    assert int(center_mask(32).sum()) == 16 * 16  # overlap 0 -> exactly the middle half


# --- procedural irregular masks ------------------------------------------------------------------

def test_hole_buckets_are_the_nvidia_ten_percent_bins():
    assert [tuple(b) for b in HOLE_BUCKETS] == [(k / 10, (k + 1) / 10) for k in range(6)]


def test_masks_own_the_buckets_and_do_not_depend_on_metrics():
    """masks is the lower layer: metrics groups results by the buckets masks draws from, never the reverse."""
    from csa_lib.eval import metrics

    assert metrics.HOLE_BUCKETS is HOLE_BUCKETS
    code = "import sys, csa_lib.masks; print('csa_lib.eval.metrics' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}).stdout.strip()
    assert loaded == "False", "importing csa_lib.masks pulled in csa_lib.eval.metrics"


@pytest.mark.parametrize("size", [64, 256])
def test_irregular_mask_hits_every_bucket(size):
    for seed in range(6):
        for bucket in HOLE_BUCKETS:
            mask = irregular_mask(size, np.random.default_rng(seed), bucket)
            assert mask.shape == (size, size) and mask.dtype == np.float32
            assert set(np.unique(mask).tolist()) <= {0.0, 1.0}
            ratio = hole_ratio(mask)
            assert bucket[0] < ratio < bucket[1], (size, seed, bucket, ratio)
            assert bucket_of(ratio) == bucket_label(bucket)


def test_irregular_mask_is_deterministic_per_seed():
    first = irregular_mask(128, np.random.default_rng(7), (0.3, 0.4))
    again = irregular_mask(128, np.random.default_rng(7), (0.3, 0.4))
    other = irregular_mask(128, np.random.default_rng(8), (0.3, 0.4))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_irregular_mask_random_bucket_and_custom_range():
    ratios = [hole_ratio(irregular_mask(64, np.random.default_rng(s))) for s in range(30)]
    assert all(0.0 < r < 0.6 for r in ratios)
    assert len({bucket_of(r) for r in ratios}) >= 3  # the bucket really is drawn at random
    mask = random_irregular_mask(96, np.random.default_rng(0), hole_range=(0.7, 0.8))
    assert 0.7 < hole_ratio(mask) < 0.8


def test_irregular_mask_has_thin_strokes_not_one_blob():
    mask = irregular_mask(256, np.random.default_rng(3), (0.2, 0.3))
    eroded = mask[1:-1, 1:-1] * mask[:-2, 1:-1] * mask[2:, 1:-1] * mask[1:-1, :-2] * mask[1:-1, 2:]
    border = mask.sum() - eroded.sum()  # hole pixels with a known 4-neighbour
    assert border > 0.05 * mask.sum()  # a single disc or square of 20 % would have far fewer


def test_irregular_mask_rejects_bad_ranges():
    with pytest.raises(ValueError, match="hole_range"):
        random_irregular_mask(64, np.random.default_rng(0), (0.5, 0.4))
    with pytest.raises(ValueError, match="too narrow"):
        random_irregular_mask(8, np.random.default_rng(0), (0.1, 0.1001))


# --- mask files -----------------------------------------------------------------------------------

def _save_grey(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def test_load_mask_thresholds_at_half_not_truncation(tmp_path):
    grey = np.zeros((16, 16), np.uint8)
    grey[:4] = 200   # hole (the original's truncation kept these known)
    grey[4:8] = 100  # known
    grey[8:12] = 128  # hole: exactly the threshold
    grey[12:] = 127  # known
    mask = load_mask(_save_grey(tmp_path / "m.png", grey), 16)
    assert mask.shape == (1, 16, 16) and mask.dtype == torch.float32
    expected = np.zeros((16, 16), np.float32)
    expected[:4] = expected[8:12] = 1
    assert np.array_equal(mask[0].numpy(), expected)


def test_load_mask_resizes_with_soft_edges(tmp_path):
    grey = np.zeros((128, 128), np.uint8)
    grey[:, :64] = 255  # left half hole
    rgb = np.repeat(grey[..., None], 3, axis=2)
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    mask = load_mask(path, 32)  # bilinear resize makes a grey seam, the threshold splits it
    assert mask.shape == (1, 32, 32)
    assert np.array_equal(mask[0].numpy(), np.repeat(np.r_[np.ones(16), np.zeros(16)][None], 32, 0))
    small = load_mask(path, 20)  # a non-integer factor: still half the area, within a column
    assert abs(hole_ratio(small) - 0.5) <= 1 / 20


def test_load_mask_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="broken.png"):
        load_mask(broken, 32)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_mask(tmp_path / "missing.png", 32)


# --- MaskSource -----------------------------------------------------------------------------------

def test_mask_source_center_is_fixed():
    source = MaskSource("center", 64)
    assert torch.equal(source.sample(0), center_mask(64))
    assert torch.equal(source.sample(5, epoch=3), center_mask(64))


def test_mask_source_procedural_is_per_sample_and_reproducible():
    source = MaskSource("random", 64, seed=1)
    a, b = source.sample(0), source.sample(1)
    assert a.shape == (1, 64, 64) and a.dtype == torch.float32
    assert not torch.equal(a, b)
    assert torch.equal(a, MaskSource("random", 64, seed=1).sample(0))
    assert not torch.equal(a, MaskSource("random", 64, seed=2).sample(0))
    assert not torch.equal(a, source.sample(0, epoch=1))
    from_rng = source.sample(np.random.default_rng(5))
    assert torch.equal(from_rng, source.sample(np.random.default_rng(5)))
    assert 0.0 < hole_ratio(a) < 0.6


def test_mask_source_reads_folder_recursively(tmp_path):
    (tmp_path / "sub").mkdir()
    patterns = []
    for k, name in enumerate(["a.png", "sub/b.PNG", "sub/c.jpg"]):
        grey = np.zeros((48, 48), np.uint8)
        grey[: 8 * (k + 1)] = 255  # rows 0 .. 8(k+1): a different hole size per file
        _save_grey(tmp_path / name, grey)
        patterns.append(8 * (k + 1) * 24 / 48)  # hole rows after resizing to 24
    (tmp_path / "notes.txt").write_text("not a mask")
    source = MaskSource("random", 24, mask_root=tmp_path, seed=0)
    assert len(source.files) == 3
    seen = {int(source.sample(i)[0].any(dim=1).sum()) for i in range(40)}
    assert seen == set(patterns)


def test_mask_source_errors(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path.name)) as info:
        MaskSource("random", 32, mask_root=tmp_path)
    assert ".png" in str(info.value) and "white = hole" in str(info.value)
    with pytest.raises(ValueError, match="mask_type"):
        MaskSource("irregular", 32)
    assert MaskSource("center", 32, mask_root=tmp_path).files == []  # ignored for centre masks


# --- strokes --------------------------------------------------------------------------------------

def test_brush_stroke_area_and_extent():
    r = 5
    mask = strokes_to_mask([{"tool": "brush", "size": r, "points": [[10, 20], [50, 20]]}], 40, 60)
    assert mask.shape == (40, 60) and mask.dtype == np.float32
    expected = 40 * 2 * r + math.pi * r * r
    assert abs(mask.sum() - expected) < 0.1 * expected
    rows, cols = np.nonzero(mask)
    assert 14 <= rows.min() <= 16 and 24 <= rows.max() <= 26  # x is the column, y the row
    assert 4 <= cols.min() <= 6 and 49 <= cols.max() <= 56


def test_eraser_removes_and_order_matters():
    brush = {"tool": "brush", "size": 4, "points": [[5, 10], [55, 10]]}
    eraser = {"tool": "eraser", "size": 6, "points": [[30, 10]]}
    painted = strokes_to_mask([brush], 30, 60)
    erased = strokes_to_mask([brush, eraser], 30, 60)
    assert erased[10, 30] == 0 and painted[10, 30] == 1
    assert 0 < erased.sum() < painted.sum()
    assert erased[10, 10] == 1 and erased[10, 50] == 1
    assert np.array_equal(strokes_to_mask([eraser, brush], 30, 60), painted)
    assert strokes_to_mask([brush, {**brush, "tool": "eraser", "size": 5}], 30, 60).sum() == 0


def test_rect_is_exact_and_single_points_are_discs():
    for corners in ([[10, 20], [30, 40]], [[30, 40], [10, 20]]):
        mask = strokes_to_mask([{"tool": "rect", "size": 3, "points": corners}], 50, 40)
        expected = np.zeros((50, 40), np.float32)
        expected[20:40, 10:30] = 1
        assert np.array_equal(mask, expected)
    full = strokes_to_mask([{"tool": "rect", "size": 1, "points": [[0, 0], [40, 50]]}], 50, 40)
    assert full.sum() == 50 * 40
    dot = strokes_to_mask([{"tool": "brush", "size": 6, "points": [[20, 20]]}], 40, 40)
    assert abs(dot.sum() - math.pi * 36) < 0.2 * math.pi * 36


def test_strokes_reject_unknown_tools():
    with pytest.raises(ValueError, match="unknown tool"):
        strokes_to_mask([{"tool": "spray", "size": 3, "points": [[1, 1]]}], 8, 8)
    with pytest.raises(ValueError, match="two corner"):
        strokes_to_mask([{"tool": "rect", "size": 3, "points": [[1, 1]]}], 8, 8)


# --- apply / ratio --------------------------------------------------------------------------------

def test_apply_mask_zeroes_hole_only():
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, :8] = 1
    masked = apply_mask(image, mask)
    assert masked.shape == image.shape
    assert torch.all(masked[0, :, :8] == 0)
    assert torch.equal(masked[0, :, 8:], image[0, :, 8:]) and torch.equal(masked[1], image[1])
    as_numpy = apply_mask(image[0].numpy(), mask[0].numpy())
    assert np.array_equal(as_numpy, masked[0].numpy())


def test_hole_ratio_counts_hole_pixels():
    mask = np.zeros((10, 10), np.float32)
    mask[:3] = 1
    assert hole_ratio(mask) == pytest.approx(0.3)
    assert hole_ratio(torch.from_numpy(mask)[None, None]) == pytest.approx(0.3)
    assert hole_ratio(center_mask(256)) == pytest.approx(14400 / 256**2)
    assert "strokes_to_mask" in recorded_strokes.__all__


def test_mixed_masks_are_half_centre_half_irregular():
    from csa_lib.masks import MaskSource, center_mask
    source = MaskSource("mixed", 64, seed=3)
    centre = center_mask(64)
    masks = [source.sample(i) for i in range(200)]
    n_centre = sum(bool(torch.equal(m, centre)) for m in masks)
    assert 70 < n_centre < 130
    assert all(m.shape == (1, 64, 64) and 0 < float(m.mean()) < 0.6 for m in masks)
    assert torch.equal(source.sample(7, epoch=1), MaskSource("mixed", 64, seed=3).sample(7, epoch=1))


@pytest.mark.parametrize("key,bucket", [((0, 1, 1911), None), ((0, 1, 383), None), ((0, 1, 1285), None)])
def test_generator_never_gives_up_near_the_top_of_a_range(key, bucket):
    # these seeds once left the ratio a few pixels under the range's top, where every new stroke
    # overshot; the generator must then keep what it has (already inside the range)
    from csa_lib.masks import irregular_mask
    rng = np.random.default_rng(list(key))
    chosen = HOLE_BUCKETS[int(np.random.default_rng(list(key)).integers(len(HOLE_BUCKETS)))]
    mask = irregular_mask(128, rng, bucket)
    lo, hi = chosen
    assert lo < float(mask.mean()) < hi


def test_random_box_mask_is_one_rectangle_of_the_drawn_size_anywhere():
    from csa_lib.masks import random_box_mask
    rng = np.random.default_rng(0)
    tops, lefts = set(), set()
    for _ in range(100):
        mask = random_box_mask(64, rng, (0.25, 0.5))
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert mask.sum() == h * w  # a filled rectangle, nothing else
        assert 16 <= h <= 32 and 16 <= w <= 32
        tops.add(int(rows[0])), lefts.add(int(cols[0]))
    assert len(tops) > 10 and len(lefts) > 10  # not a fixed position


def test_boxes_masks_are_half_boxes_half_irregular():
    from csa_lib.masks import MaskSource
    source = MaskSource("boxes", 64, seed=3)
    masks = [source.sample(i).numpy()[0] for i in range(200)]

    def is_box(m):
        rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
        return m.sum() == (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)

    n_box = sum(is_box(m) for m in masks)
    assert 70 < n_box < 130
    assert len({np.nonzero(m.any(axis=1))[0][0] for m in masks if is_box(m)}) > 10
    assert np.array_equal(source.sample(7, epoch=1), MaskSource("boxes", 64, seed=3).sample(7, epoch=1))


def test_mask_folder_is_checked_once_and_bad_masks_are_skipped_with_one_warning(tmp_path):
    import warnings as _warnings

    good = np.zeros((32, 32), np.uint8)
    good[8:20, 8:20] = 255
    _save_grey(tmp_path / "good.png", good)
    _save_grey(tmp_path / "white.png", np.full((32, 32), 255, np.uint8))  # all hole: nothing to inpaint from
    _save_grey(tmp_path / "black.png", np.zeros((32, 32), np.uint8))  # no hole
    (tmp_path / "broken.png").write_bytes(b"\x89PNG cut short")
    (tmp_path / "zero.jpg").write_bytes(b"")
    with pytest.warns(RuntimeWarning) as caught:
        source = MaskSource("random", 16, mask_root=tmp_path, seed=0)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipping 4 of 5 masks" in message
    for name, why in (("white.png", "all hole"), ("black.png", "empty"), ("broken.png", "unreadable"),
                      ("zero.jpg", "unreadable")):
        assert f"{name} ({why}" in message, name
    assert [p.name for p in source.files] == ["good.png"]
    assert all(0 < hole_ratio(source.sample(i)) < 1 for i in range(10))  # never an all-hole draw
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")  # the validation set's source: same folder, no second warning
        assert MaskSource("random", 16, mask_root=tmp_path, seed=1).files == source.files


def test_mask_folder_without_a_usable_mask_is_an_error(tmp_path):
    _save_grey(tmp_path / "white.png", np.full((32, 32), 255, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"has no usable mask among 2 files: .*broken.png \(unreadable.*white.png"):
        MaskSource("mixed", 16, mask_root=tmp_path)


def test_center_mask_overlap_zero_is_the_half_side_square():
    half = center_mask(8, overlap=0)[0]
    expected = torch.zeros(8, 8)
    expected[2:6, 2:6] = 1.0  # rows/cols size/4 .. 3*size/4 - 1, by hand
    assert torch.equal(half, expected)
    with pytest.raises(ValueError, match="overlap"):
        center_mask(8, overlap=2)


def test_former_centre_masks_are_center_mask():
    """evaluate's 'center' and 'center_half' and the tests' centre_mask are csa_lib.masks.center_mask."""
    from conftest import centre_mask

    from csa_lib.eval import evaluate

    (_, center), = evaluate.center_masks(64)
    (_, half), = evaluate.center_half_masks(64)
    assert np.array_equal(center, center_mask(64)[0].numpy() > 0.5)
    assert np.array_equal(half, center_mask(64, overlap=0)[0].numpy() > 0.5)
    assert half[16:48, 16:48].all() and half.sum() == 32 * 32  # 16..47, by hand
    assert torch.equal(centre_mask(3, 64), center_mask(64).expand(3, 1, 64, 64))


@pytest.mark.parametrize("seed,band", [(1, (0.1, 0.2)), (5, (0.3, 0.45))])
def test_stroke_mask_is_seeded_and_in_its_band(seed, band):
    a = stroke_mask(128, band, seed)
    assert a.dtype == np.float32 and a.shape == (128, 128) and set(np.unique(a)) <= {0.0, 1.0}
    assert np.array_equal(a, stroke_mask(128, band, seed))
    assert not np.array_equal(a, stroke_mask(128, band, seed + 1))
    assert band[0] <= hole_ratio(a) <= band[1]
    with pytest.raises(ValueError, match="ratio_range"):
        stroke_mask(64, (0.3, 0.2))


def test_every_drawn_mask_is_thresholded_by_the_one_rule(monkeypatch, tmp_path):
    """The procedural, recorded-stroke and sample-stroke masks and mask files all binarise with holes.hole_of."""
    from conftest import callers_missing

    from csa_lib import holes

    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "m.png")
    callers = {
        "random_irregular_mask": lambda: random_irregular_mask(32, np.random.default_rng(0)),
        "strokes_to_mask": lambda: strokes_to_mask([{"tool": "brush", "size": 2, "points": [[3, 3], [9, 9]]}], 16, 16),
        "stroke_mask": lambda: stroke_mask(64, (0.2, 0.3), 0),
        "load_mask": lambda: load_mask(tmp_path / "m.png", 8),
    }
    assert callers_missing(monkeypatch, holes, "hole_of", callers) == []
