"""End-to-end evaluation with the classical baselines (and a fake CSA inference module)."""

import csv
import types

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2")
pytest.importorskip("skimage")

from csa_lib.eval import evaluate  # noqa: E402
from csa_lib.eval.baselines import BASELINES  # noqa: E402
from csa_lib.eval.metrics import METRIC_KEYS  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _images(size: int = 64) -> list[tuple[str, np.ndarray]]:
    """Two small smooth-ish RGB images."""
    y, x = np.mgrid[0:size, 0:size]
    first = np.stack([x * 3, y * 3, 128 + 0 * x], -1).astype(np.uint8)
    second = np.stack([(x * y) % 256, 255 - y * 2, x * 2], -1).astype(np.uint8)
    return [("ramp", first), ("mix", second)]


def _masks(size: int = 64) -> list[tuple[str, np.ndarray]]:
    """A centre square (25 %) and a stroke (a few %)."""
    center = np.zeros((size, size), bool)
    center[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    stroke = np.zeros((size, size), np.float32)
    stroke[10:14, 5:50] = 1.0
    return [("center", center), ("stroke", stroke)]


def test_run_evaluation_end_to_end(tmp_path):
    rows = evaluate.run_evaluation(_images(), _masks(), BASELINES, tmp_path, n_strips=3, progress=False)
    assert len(rows) == 2 * 2 * len(BASELINES)
    assert {r["bucket"] for r in rows} == {"20-30%", "0-10%"}
    with (tmp_path / "results.csv").open() as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 2 * 2 * len(BASELINES)
    assert {"image", "mask", "method", "bucket", "hole_ratio", "time_s", "lpips", *METRIC_KEYS} <= set(read[0])
    assert set(evaluate.ROW_METRICS) <= set(read[0])
    summary = (tmp_path / "summary.md").read_text()
    for name in BASELINES:
        assert f"| {name} |" in summary
    assert "| 20-30% |" in summary and "psnr_hole" in summary and "| ssim | lpips |" in summary
    assert "wins by LPIPS" in summary and "## Colour cast on plain holes" in summary
    png = tmp_path / "strips.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(png) as strip:
        strip.verify()
    with Image.open(png) as strip:
        width, height = strip.size
    assert width > height  # 3 example rows x (2 + 6 methods + truth) columns
    # masks were honoured: identical known pixels -> whole-image error only from the hole
    for row in rows:
        assert row["l1"] == pytest.approx(row["l1_hole"] * row["hole_ratio"])
        assert (row["lpips"] == 0.0) == (row["l1"] == 0.0), row  # zero exactly when the fill is exact
    # a smooth ramp under a thin stroke is nearly perceptually exact; the centre square much less so
    by_key = {(r["image"], r["mask"], r["method"]): r["lpips"] for r in rows}
    assert by_key[("ramp", "stroke", "telea")] < by_key[("mix", "center", "mean_fill")]


def test_on_output_hands_over_each_result_once():
    """Callers keep the outputs through `on_output` instead of running a method a second time."""
    calls = []

    def counting(image, hole):
        calls.append(1)
        return np.where(hole[..., None], np.uint8(9), image)

    seen = []
    rows = evaluate.run_evaluation(_images(), _masks(), {"nine": counting}, progress=False,
                                   on_output=lambda *args: seen.append(args))
    assert len(calls) == len(rows) == len(seen) == 2 * 2
    images, masks = dict(_images()), dict(_masks())
    for (name, mask_name, method, output), row in zip(seen, rows):
        assert (name, mask_name, method) == (row["image"], row["mask"], row["method"])
        hole = masks[mask_name] > 0.5
        assert output.dtype == np.uint8 and (output[hole] == 9).all()
        assert np.array_equal(output[~hole], images[name][~hole])


def test_masks_callable_and_no_output(tmp_path):
    images = _images(32)
    calls = []

    def per_image(index, name):
        calls.append((index, name))
        hole = np.zeros((32, 32), bool)
        hole[index : index + 8, 4:12] = True
        return [(f"m{index}", hole)]

    rows = evaluate.run_evaluation(images, per_image, {"mean_fill": BASELINES["mean_fill"]}, None, progress=False)
    assert calls == [(0, "ramp"), (1, "mix")]
    assert [r["mask"] for r in rows] == ["m0", "m1"]
    assert not list(tmp_path.iterdir())


def test_cli_with_mask_folder(tmp_path, capsys):
    image_dir, mask_dir, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    image_dir.mkdir()
    mask_dir.mkdir()
    for name, image in _images(80):  # resized to 64 by the CLI
        Image.fromarray(image).save(image_dir / f"{name}.png")
    Image.fromarray(_masks(64)[0][1].astype(np.uint8) * 255).save(mask_dir / "center.png")
    code = evaluate.main(["--images", str(image_dir), "--masks", str(mask_dir), "--methods", "telea,mean_fill",
                          "--size", "64", "--out", str(out)])
    assert code == 0
    with (out / "results.csv").open() as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 2 * 1 * 2
    assert {float(r["hole_ratio"]) for r in read} == {0.25}
    assert "telea" in capsys.readouterr().out
    assert (out / "strips.png").read_bytes()[:8] == PNG_SIGNATURE


def test_load_helpers(tmp_path):
    Image.fromarray(np.zeros((30, 60, 3), np.uint8)).save(tmp_path / "wide.png")
    Image.fromarray(np.full((10, 10), 255, np.uint8)).convert("L").save(tmp_path / "white.png")
    assert evaluate.load_image(tmp_path / "wide.png", 16).shape == (16, 16, 3)
    masks = dict(evaluate.load_masks(tmp_path, 16))
    assert masks["white"].all() and not masks["wide"].any()
    assert not dict(evaluate.load_masks(tmp_path, 16, invert=True))["white"].any()
    (center,) = evaluate.center_masks(64)
    assert center[0] == "center" and center[1].shape == (64, 64)
    assert center[1][17:47, 17:47].all() and center[1].sum() == 30 * 30  # the original's geometry at 64 px
    with pytest.raises(FileNotFoundError):
        evaluate.load_images(tmp_path / "missing", 16)


def test_build_methods():
    methods = evaluate.build_methods("telea, biharmonic")
    assert list(methods) == ["telea", "biharmonic"]
    methods = evaluate.build_methods("patchmatch,fsr_fast")
    assert methods == {"patchmatch": BASELINES["patchmatch"], "fsr_fast": BASELINES["fsr_fast"]}
    with pytest.raises(ValueError, match="unknown method"):
        evaluate.build_methods(["nope"])


def test_csa_method_wiring(monkeypatch):
    """The CSA adapter: hole zeroed before the model, the bool hole passed as it is, `inpaint`'s result returned."""
    seen = {}

    def load_model(path=None):
        seen["path"] = path
        return "model"

    def inpaint(model, image, mask, blend):
        seen["image"], seen["mask"], seen["blend"] = np.asarray(image), np.asarray(mask), blend
        return Image.fromarray(np.full((32, 32, 3), 77, np.uint8))

    fake = types.ModuleType("csa_lib.inference")
    fake.load_model, fake.inpaint = load_model, inpaint
    monkeypatch.setattr(evaluate, "inference", fake)
    csa = evaluate.build_methods("csa", checkpoint="weights.pt")["csa"]
    assert seen["path"] == "weights.pt"
    image = np.full((32, 32, 3), 200, np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[8:16, 8:16] = True
    out = csa(image, hole)
    assert (seen["image"][hole] == 0).all() and (seen["image"][~hole] == 200).all()
    assert seen["mask"].dtype == bool and np.array_equal(seen["mask"], hole)  # no 0/255 image for read_mask to undo
    assert (out == 77).all()  # inpaint pastes the known pixels back itself (tests/test_imageio.py)
    assert seen["blend"] == "poisson"
    evaluate.build_methods("csa_raw")["csa_raw"](image, hole)
    assert seen["path"] is None and seen["blend"] == "none"


def test_irregular_masks_from_masks_module():
    source = evaluate.irregular_masks(64, per_bucket=1, seed=3)
    first, again = source(0, "a"), source(0, "a")
    assert len(first) == 6
    for (name, mask), (_, mask2) in zip(first, again):
        assert mask.shape == (64, 64)
        np.testing.assert_array_equal(mask, mask2)


def test_center_half_mask_is_rows_and_columns_64_to_191():
    from csa_lib.eval.evaluate import center_half_masks
    [(name, hole)] = center_half_masks(256)
    assert name == "center_half" and hole.dtype == bool and hole.sum() == 128 * 128
    rows, cols = np.nonzero(hole.any(1))[0], np.nonzero(hole.any(0))[0]
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (64, 191, 64, 191)


def test_freeform_masks_are_seeded_and_in_range():
    from csa_lib.eval.evaluate import freeform_masks
    source = freeform_masks(128, (0.15, 0.35), seed=4, per_image=2)
    first = source(3, "x")
    assert [n for n, _ in first] == ["freeform_0", "freeform_1"]
    for _, m in first:
        assert 0.15 <= float(np.mean(m > 0.5)) <= 0.35
    again = freeform_masks(128, (0.15, 0.35), seed=4, per_image=2)(3, "x")
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(first, again))
    assert not np.array_equal(first[0][1], source(4, "y")[0][1])  # another image, another mask


def test_wins_table_counts_best_method_and_drops_below_reference():
    from csa_lib.eval.evaluate import wins_markdown
    rows = []
    for image, (a, t) in enumerate([(30.0, 25.0), (20.0, 24.0), (22.0, 26.5), (28.0, 28.0)]):
        rows += [{"image": f"i{image}", "mask": "m", "method": "csa", "psnr": a},
                 {"image": f"i{image}", "mask": "m", "method": "telea", "psnr": t}]
    table = wins_markdown(rows)
    csa = next(line for line in table.splitlines() if line.startswith("| csa "))
    telea = next(line for line in table.splitlines() if line.startswith("| telea "))
    # csa wins i0 and ties i3; gaps +5, -4, -4.5, 0 -> mean -0.875, worst -4.5, two pairs > 3 dB below
    assert csa == "| csa | 2 | 4 | -0.88 | -4.50 | 2 |"
    assert telea.startswith("| telea | 3 | 4 | +0.00 | +0.00 | 0 |")


def test_wins_table_adds_lpips_mean_and_wins():
    from csa_lib.eval.evaluate import wins_markdown
    rows = []
    for image, (a, t, la, lt) in enumerate([(30.0, 25.0, 0.10, 0.20), (20.0, 24.0, 0.30, 0.10), (22.0, 26.5, 0.05, 0.05)]):
        rows += [{"image": f"i{image}", "mask": "m", "method": "csa", "psnr": a, "lpips": la},
                 {"image": f"i{image}", "mask": "m", "method": "telea", "psnr": t, "lpips": lt}]
    lines = wins_markdown(rows).splitlines()
    assert lines[0].endswith("| mean LPIPS | wins by LPIPS |")
    # csa: PSNR wins i0; gaps +5, -4, -4.5; LPIPS mean 0.15, wins i0 and the tie i2
    assert lines[2] == "| csa | 1 | 3 | -1.17 | -4.50 | 2 | 0.1500 | 2 |"
    assert lines[3] == "| telea | 2 | 3 | +0.00 | +0.00 | 0 | 0.1167 | 2 |"


def test_plain_hole_casts_use_the_reference_l1():
    from csa_lib.eval.evaluate import plain_hole_casts, plain_holes_markdown
    rows = []
    # pair, telea's hole L1, (telea cast, csa cast): p0 and p2 are plain (L1 < 0.02), p1 is not
    for pair, l1_telea, casts in (("p0", 0.010, (1.0, 6.0)), ("p1", 0.050, (9.0, 20.0)), ("p2", 0.019, (3.0, 2.0))):
        for method, cast in zip(("telea", "csa"), casts):
            rows.append({"image": pair, "mask": "m", "method": method, "l1_hole": l1_telea if method == "telea" else 0.0,
                         "colour_cast": cast})
    table = {t["method"]: t for t in plain_hole_casts(rows)}
    assert table["telea"] == {"method": "telea", "n": 2, "mean_cast": 2.0, "max_cast": 3.0}
    assert table["csa"] == {"method": "csa", "n": 2, "mean_cast": 4.0, "max_cast": 6.0}
    text = plain_holes_markdown(rows)
    assert text.startswith("2 image x mask pairs where telea's hole L1 is under 0.02")
    assert "| csa | 2 | 4.00 | 6.00 |" in text
    assert plain_hole_casts(rows, max_l1=0.005)[0]["n"] == 0
