"""Metrics against hand-computed values and skimage as the reference."""

import csv
import math

import numpy as np
import pytest

from csa_lib.eval import metrics

skimage_metrics = pytest.importorskip("skimage.metrics")


def _grey(value: float, shape=(8, 8)) -> np.ndarray:
    """Constant (H, W, 3) uint8 image."""
    return np.full((*shape, 3), value, dtype=np.uint8)


def test_psnr_constant_error_matches_hand_value():
    truth, result = _grey(100), _grey(110)
    assert metrics.psnr(result, truth) == pytest.approx(20 * math.log10(255 / 10))
    assert metrics.psnr(truth, truth) == math.inf
    # float input in [0, 255] is the same canonical form
    assert metrics.psnr(result.astype(np.float32), truth.astype(np.float64)) == pytest.approx(20 * math.log10(25.5))


def test_psnr_matches_skimage():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    result = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    expected = skimage_metrics.peak_signal_noise_ratio(truth, result, data_range=255)
    assert metrics.psnr(result, truth) == pytest.approx(expected)


def test_hole_region_metrics_hand_built():
    truth = _grey(0, (10, 10))
    result = truth.copy()
    mask = np.zeros((10, 10), dtype=np.float32)
    mask[2:7, 3:8] = 1.0  # 25 hole pixels out of 100
    result[mask > 0] = 10  # error 10 in the hole, 0 elsewhere
    assert metrics.psnr(result, truth, mask, "hole") == pytest.approx(20 * math.log10(25.5))
    assert metrics.psnr(result, truth) == pytest.approx(10 * math.log10(255**2 / (100 * 0.25)))
    assert metrics.l1(result, truth, mask, "hole") == pytest.approx(10 / 255)
    assert metrics.l1(result, truth) == pytest.approx(0.25 * 10 / 255)
    assert metrics.l2(result, truth, mask, "hole") == pytest.approx((10 / 255) ** 2)
    assert metrics.l2(result, truth) == pytest.approx(0.25 * (10 / 255) ** 2)
    # (1, H, W) and bool masks give the same answer
    assert metrics.l1(result, truth, mask[None] > 0, "hole") == pytest.approx(10 / 255)
    empty = np.zeros((10, 10), bool)
    assert math.isnan(metrics.psnr(result, truth, empty, "hole"))
    with pytest.raises(ValueError):
        metrics.psnr(result, truth, mask, "edges")
    with pytest.raises(ValueError):
        metrics.psnr(result, truth, np.zeros((5, 5)), "hole")


def test_ssim_equals_skimage_on_full_image():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    noise = rng.integers(-30, 31, truth.shape)
    result = np.clip(truth.astype(int) + noise, 0, 255).astype(np.uint8)
    expected = skimage_metrics.structural_similarity(truth, result, channel_axis=-1, data_range=255)
    assert metrics.ssim(result, truth) == pytest.approx(expected)
    assert 0.0 < expected < 1.0


def test_ssim_hole_averages_the_map_inside_the_hole():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    result = truth.copy()
    result[:, 30:] = 255 - result[:, 30:]  # change only columns 30+, far (> 3 px) from the hole
    hole = np.zeros((40, 40), bool)
    hole[10:20, 5:15] = True
    assert metrics.ssim(result, truth, hole, "hole") == pytest.approx(1.0)
    assert metrics.ssim(result, truth) < 0.9
    # a hole over the changed area: equals the skimage map's mean there
    hole2 = np.zeros((40, 40), bool)
    hole2[5:15, 28:36] = True
    _, ssim_map = skimage_metrics.structural_similarity(truth, result, channel_axis=-1, data_range=255, full=True)
    assert metrics.ssim(result, truth, hole2, "hole") == pytest.approx(ssim_map[hole2].mean())


def test_tv_hand_computed():
    grey = np.array([[0, 255, 0], [0, 0, 0]], dtype=np.uint8)
    image = np.repeat(grey[..., None], 3, axis=2)  # (2, 3, 3)
    # horizontal diffs (0-1 scale): row 0: 1, 1; row 1: 0, 0 -> mean 0.5; vertical: 0, 1, 0 -> mean 1/3
    assert metrics.tv(image) == pytest.approx(0.5 + 1 / 3)
    hole = np.zeros((2, 3), bool)
    hole[0, 1] = True  # the bright pixel: diffs touching it are all 1
    assert metrics.tv(image, hole, "hole") == pytest.approx(2.0)
    hole = np.zeros((2, 3), bool)
    hole[1, 2] = True  # touches horizontal (1,1)-(1,2) = 0 and vertical (0,2)-(1,2) = 0
    assert metrics.tv(image, hole, "hole") == pytest.approx(0.0)
    assert metrics.tv(_grey(7)) == 0.0


def test_compute_all_keys_and_values():
    truth = _grey(50, (16, 16))
    result = truth.copy()
    mask = np.zeros((16, 16), bool)
    mask[4:8, 4:8] = True
    result[mask] = 60
    row = metrics.compute_all(result, truth, mask)
    assert set(row) == {"hole_ratio", *metrics.METRIC_KEYS}
    assert row["hole_ratio"] == pytest.approx(16 / 256)
    assert row["psnr_hole"] == pytest.approx(20 * math.log10(25.5))
    assert row["l1"] == pytest.approx(16 / 256 * 10 / 255)
    assert row["colour_cast"] == pytest.approx(10.0)
    assert all(isinstance(v, float) for v in row.values())


def test_colour_cast_hand_computed():
    """Per channel mean signed error over the hole; the largest absolute one; known pixels ignored."""
    truth = _grey(100, (4, 4))
    result = truth.copy()
    hole = np.zeros((4, 4), bool)
    hole[:2, :2] = True  # 4 hole pixels
    result[0, 0] = (112, 100, 90)  # red +12, blue -10 on one pixel
    result[0, 1] = (100, 100, 94)  # blue -6
    result[1, 0] = (96, 108, 100)  # red -4, green +8
    result[3, 3] = (0, 0, 0)  # outside the hole: no effect
    # means over the 4 hole pixels: red (12 - 4) / 4 = 2, green 8 / 4 = 2, blue (-10 - 6) / 4 = -4
    assert metrics.colour_cast(result, truth, hole) == pytest.approx(4.0)
    # noise that averages out per channel is no cast, though every pixel is off
    noisy = truth.copy()
    noisy[:2, :2] = [[(110, 90, 100), (90, 110, 100)], [(100, 100, 120), (100, 100, 80)]]
    assert metrics.colour_cast(noisy, truth, hole) == 0.0
    assert math.isnan(metrics.colour_cast(result, truth, np.zeros((4, 4), bool)))
    with pytest.raises(ValueError):
        metrics.colour_cast(result, truth, np.zeros((3, 4), bool))


@pytest.mark.parametrize(
    ("ratio", "label"),
    [(0.0, "0-10%"), (0.0999, "0-10%"), (0.1, "10-20%"), (0.1 + 0.2, "30-40%"), (0.7 - 0.4, "30-40%"),
     (0.25, "20-30%"), (0.5999, "50-60%"), (0.6, "60-100%"), (1.0, "60-100%")],
)
def test_bucket_labels_at_edges(ratio, label):
    assert metrics.bucket_of(ratio) == label


def test_bucket_rejects_out_of_range():
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError):
            metrics.bucket_of(bad)
    assert metrics.BUCKET_LABELS[0] == "0-10%" and metrics.BUCKET_LABELS[-1] == "60-100%"
    assert metrics.HOLE_BUCKETS[-1] == (0.5, 0.6) and len(metrics.HOLE_BUCKETS) == 6


def test_summarise_means_and_order():
    rows = [
        {"method": "b", "bucket": "20-30%", "psnr": 10.0, "ssim": 0.5},
        {"method": "a", "bucket": "0-10%", "psnr": 20.0, "ssim": float("nan")},
        {"method": "b", "bucket": "0-10%", "psnr": 30.0, "ssim": 0.7},
        {"method": "b", "bucket": "20-30%", "psnr": 20.0, "ssim": 0.7},
        {"method": "a", "bucket": "0-10%", "psnr": 40.0, "ssim": 0.9},
    ]
    summary = metrics.summarise(rows)
    assert [(s["method"], s["bucket"]) for s in summary] == [("b", "0-10%"), ("b", "20-30%"), ("a", "0-10%")]
    assert summary[1] == {"method": "b", "bucket": "20-30%", "n": 2, "psnr": 15.0, "ssim": pytest.approx(0.6)}
    assert summary[2]["psnr"] == 30.0 and summary[2]["ssim"] == 0.9  # nan ignored
    by_method = metrics.summarise(rows, by=("method",), metrics=("psnr",))
    assert by_method == [{"method": "b", "n": 3, "psnr": 20.0}, {"method": "a", "n": 2, "psnr": 30.0}]


def test_markdown_and_csv(tmp_path):
    rows = [{"method": "telea", "psnr": 21.23456, "n": 3}, {"method": "ns", "psnr": float("inf"), "n": 1}]
    text = metrics.to_markdown(rows)
    lines = text.strip().splitlines()
    assert lines[0] == "| method | psnr | n |"
    assert lines[2] == "| telea | 21.23 | 3 |"
    assert lines[3] == "| ns | inf | 1 |"
    path = metrics.to_csv(rows, tmp_path / "sub" / "r.csv")
    with path.open() as handle:
        read = list(csv.DictReader(handle))
    assert [r["method"] for r in read] == ["telea", "ns"]
    assert float(read[0]["psnr"]) == 21.23456


def test_as_hole_is_the_one_mask_rule():
    """as_hole (evaluation, metrics, baselines) thresholds as holes.read_mask does: an 8-bit 127 is known, 128 a hole."""
    from csa_lib import holes
    from csa_lib.eval import baselines

    levels = np.array([[0, 100, 127], [128, 200, 255]], np.uint8)
    assert metrics.as_hole(levels).tolist() == [[False, False, False], [True, True, True]]  # by hand
    assert np.array_equal(metrics.as_hole(levels), holes.read_mask(levels))
    floats = np.array([[0.0, 0.5], [0.51, 1.0]], np.float32)
    assert metrics.as_hole(floats[None]).tolist() == [[False, False], [True, True]]
    assert metrics.as_hole(np.array([[0, 1]], np.int64)).tolist() == [[False, True]]  # a 0/1 mask
    image = (np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 10)
    out = baselines.mean_fill(image, levels)
    assert np.array_equal(out[0], image[0])  # the baselines read the same hole: 100 and 127 stay known
    assert (out[1] == image[0].mean(axis=0).round()).all()
