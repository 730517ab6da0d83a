"""csa_lib.notebook.viz: notebook figures, loss plots, training-sample grids, sample strips on disk, inpainting strips."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from csa_lib.notebook import viz
from conftest import callers_missing


def _samples(n: int, size: int = 16) -> list[dict[str, torch.Tensor]]:
    """n {"image": (3,size,size), "mask": (1,size,size)} samples with a centre hole."""
    mask = torch.zeros(1, size, size)
    mask[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1.0
    return [{"image": torch.rand(3, size, size) * 2 - 1, "mask": mask} for _ in range(n)]


def test_public_array_helpers():
    """to_chw / to_hwc / hide_ticks are public: attention.py and notebooks use them."""
    image = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert viz.to_chw(image).shape == (3, 2, 2)
    np.testing.assert_allclose(viz.to_hwc(image)[0, 0], [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"\(3,H,W\)"):
        viz.to_chw(torch.zeros(2, 2))
    fig = viz.NotebookFigure(figsize=(1, 1))
    ax = fig.subplots()
    viz.hide_ticks(ax)
    assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0


def test_notebook_figure_shows_itself_as_png():
    fig = viz.NotebookFigure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [0, 1])
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_loss_plot_leaves_out_terms_that_are_always_zero():
    history = [{"step": s, "epoch": 0, "l1_coarse": 1 / s, "l1_refined": 2 / s, "adv_image": 0.5, "adv_feature": 0.0,
                "consistency_csa": 0.0, "consistency_decoder": 0.0, "g_total": 3.0, "d_total": 1.0}
               for s in range(1, 6)]
    fig = viz.loss_plot(history)
    assert isinstance(fig, viz.NotebookFigure)
    assert [ax.get_title() for ax in fig.axes] == ["reconstruction (L1)", "adversarial", "total"]
    assert [line.get_label() for line in fig.axes[1].lines] == ["adv_image"]  # adv_feature is all zeros
    only = viz.loss_plot(history, keys=["l1_refined"])
    assert [line.get_label() for line in only.axes[0].lines] == ["l1_refined"]
    assert len(viz.loss_plot([]).axes) == 1  # nothing logged yet: one empty panel


def test_live_plot_displays_then_updates(monkeypatch):
    import IPython.display

    shown, updates = [], []
    handle = SimpleNamespace(update=updates.append)
    monkeypatch.setattr(IPython.display, "display", lambda fig, display_id: shown.append(fig) or handle)
    plot = viz.LivePlot(every=2)
    trainer = SimpleNamespace(step=1, history=[{"step": 1, "l1_refined": 0.5}], is_main=True)
    plot.on_step_end(trainer, {})
    assert not shown  # step 1 is not a multiple of 2
    trainer.step = 2
    plot.on_step_end(trainer, {})
    trainer.step = 4
    plot.on_step_end(trainer, {})
    plot.on_fit_end(trainer)
    assert len(shown) == 1 and len(updates) == 2


def test_dataset_grid_rows_truth_mask_input():
    fig = viz.dataset_grid(_samples(5), n=3)
    assert len(fig.axes) == 3 * 3
    assert [fig.axes[3 * r].get_ylabel() for r in range(3)] == ["truth", "mask (white = hole)", "input"]
    assert fig.axes[0].get_title() == "hole 25%"
    shown_input = fig.axes[6].images[0].get_array()  # (H,W,3) in [0,1]
    assert np.allclose(shown_input[8, 8], 1.0)  # the hole is painted white
    assert len(viz.dataset_grid(_samples(2), n=8).axes) == 3 * 2  # n is clipped to the dataset
    with pytest.raises(ValueError):
        viz.dataset_grid(_samples(2), n=4, start=2)


def _write_strips(folder, steps):
    samples = _samples(2)
    image = torch.stack([s["image"] for s in samples])  # (2,3,16,16)
    mask = torch.stack([s["mask"] for s in samples])  # (2,1,16,16)
    out = SimpleNamespace(coarse=image, refined=image, composite=image)
    for step in steps:
        viz.save_sample_strip(folder / "samples" / f"step_{step:08d}.png", image, mask, out)


def test_sample_strip_files_sorted_by_step(tmp_path):
    _write_strips(tmp_path, [20, 3, 100])
    (tmp_path / "samples" / "notes.png").write_bytes(b"")  # not a strip
    (tmp_path / "samples" / "step_9.png").write_bytes(b"")  # unpadded names still sort by number
    names = [p.name for p in viz.sample_strip_files(tmp_path)]
    assert names == ["step_00000003.png", "step_9.png", "step_00000020.png", "step_00000100.png"]
    assert viz.sample_strip_files(tmp_path / "missing") == []


def test_show_sample_strips_newest_first_labelled(tmp_path):
    _write_strips(tmp_path, [10, 20, 30])
    fig = viz.show_sample_strips(tmp_path, last=2)
    assert [ax.get_title() for ax in fig.axes] == ["step 20", "step 30"]
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == list(viz.STRIP_COLUMNS)
    ticks = fig.axes[0].get_xticks()  # tile centres of a 5 x 16-px strip with 2-px padding
    assert np.allclose(ticks, [2 + 18 * k + 7.5 for k in range(5)])  # columns 2..17, 20..35, ...
    with pytest.raises(FileNotFoundError):
        viz.show_sample_strips(tmp_path / "empty")


def test_inpaint_strips_layout():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    hole = np.zeros((8, 8), bool)
    hole[2:6, 2:6] = True
    examples = [(f"ex{i}", truth, hole, truth) for i in range(5)]
    fig = viz.inpaint_strips(examples, per_row=2)
    assert len(fig.axes) == 3 * (3 * 2)  # 3 rows of 2 strips, 3 panels each
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 5 * 3  # the unused sixth strip is blank
    assert [ax.get_title() for ax in fig.axes[:6]] == ["", "ex0", "", "", "ex1", ""]
    assert [ax.get_xlabel() for ax in fig.axes[:3]] == ["input", "result", "truth"]
    shown = fig.axes[0].images[0].get_array()
    assert (np.asarray(shown)[3, 3] == 255).all() and np.array_equal(np.asarray(shown)[0, 0], truth[0, 0])
    with pytest.raises(ValueError):
        viz.inpaint_strips([])


def test_saved_sample_strips_name_their_columns(tmp_path):
    from PIL import Image

    image = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    out = SimpleNamespace(coarse=image, refined=image, composite=image)
    grid = viz.sample_strip(image, mask, out)  # (3, H', W')
    path = viz.save_sample_strip(tmp_path / "s.png", image, mask, out)
    with Image.open(path) as saved:
        strip = np.asarray(saved.convert("L"))
    band = strip.shape[0] - grid.shape[1]
    assert band > 8 and strip.shape[1] == grid.shape[2]  # a label band on top, same width
    step = (strip.shape[1] - 2) / len(viz.STRIP_COLUMNS)
    for k in range(len(viz.STRIP_COLUMNS)):  # every column has dark label pixels above it
        assert (strip[:band, int(2 + step * k): int(2 + step * (k + 1))] < 128).any(), viz.STRIP_COLUMNS[k]


def test_robust_limits_by_hand():
    robust_limits = viz.robust_limits
    values = np.array([0.0, 0.1, -0.2, 0.3, 20.5] + [0.05] * 95)  # 100 values, one outlier
    lo, hi = robust_limits(values, centre=0.0, percentile=98)
    deviations = np.sort(np.abs(values))  # the 98th percentile, lower neighbour, by hand:
    expected = deviations[97]  # rank 0.98 * 99 = 97.02 -> sorted value 97 (0.2; the outlier is value 99)
    assert hi == pytest.approx(expected) and lo == pytest.approx(-expected)
    assert hi < 1  # 20.5 does not stretch the scale
    lo, hi = robust_limits([1.0, 1.5, 0.5, np.nan], centre=1.0, percentile=100)
    assert (lo, hi) == (0.5, 1.5)  # NaN ignored, symmetric around the centre
    assert robust_limits([2.0, 2.0], centre=2.0) == pytest.approx((2.0 - 1e-6, 2.0 + 1e-6))
    with pytest.raises(ValueError, match="finite"):
        robust_limits([np.nan])
    with pytest.raises(ValueError, match="percentile"):
        robust_limits([1.0], percentile=0)


def test_masked_input_paints_the_hole_white_for_arrays_and_tensors():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    hole = np.array([[False, True, False], [True, False, False]])
    shown = viz.masked_input(image, hole)
    expected = image.copy()
    expected[0, 1] = expected[1, 0] = 255  # by hand
    assert np.array_equal(shown, expected) and shown.dtype == np.uint8
    tensor = torch.zeros(1, 3, 2, 3)
    painted = viz.masked_input(tensor, torch.from_numpy(hole)[None, None].float(), fill=0.5)
    assert torch.equal(painted[0, :, 0, 1], torch.full((3,), 0.5)) and float(painted.sum()) == 0.5 * 3 * 2


def test_every_white_hole_is_masked_input(monkeypatch, tmp_path):
    """The evaluation strips, `inpaint_strips`, `dataset_grid` and `csa-demo` show the hole with `viz.masked_input`."""
    from PIL import Image

    from csa_lib.cli import demo
    from csa_lib.eval import report
    from csa_lib.config import Config
    from csa_lib.model import build_models

    truth = np.full((16, 16, 3), 90, np.uint8)
    hole = np.zeros((16, 16), bool)
    hole[4:9, 5:11] = True
    example = {"image": "grey", "bucket": "10-20%", "truth": truth, "hole": hole, "outputs": {"a": truth}, "lpips": {"a": 0.0}}
    torch.manual_seed(0)
    generator = build_models(Config.smoke(image_size=32, ngf=4, ndf=4))[0].eval()
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(truth).save(tmp_path / "images" / "grey.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "masks" / "box.png")
    monkeypatch.setattr(demo, "load_model", lambda checkpoint: generator)
    dataset = [{"image": torch.zeros(3, 16, 16), "mask": torch.from_numpy(hole)[None].float()}]
    callers = {
        "report.plot_strips": lambda: report.plot_strips([example], ["a"]),
        "viz.inpaint_strips": lambda: viz.inpaint_strips([("x", truth, hole, truth)]),
        "viz.dataset_grid": lambda: viz.dataset_grid(dataset, n=1),
        "csa-demo": lambda: demo.run_demo(None, tmp_path, tmp_path / "out"),
    }
    assert callers_missing(monkeypatch, viz, "masked_input", callers) == []
