"""Attention pictures and explainers: the figures carry the right data, bad positions raise."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.quiver import Quiver

from csa_lib.notebook import attention as A
from csa_lib.notebook.explorer import attention_explorer
from csa_lib.notebook.compared_layers import contextual_attention, shift_copy
from csa_lib.csa_layer import coherent_semantic_attention, feature_hole_mask
from csa_lib.model import CSAGenerator
from conftest import centre_mask


@pytest.fixture(scope="module")
def toy():
    """Random 8x8 features (B=2) with different holes per sample -> (x, hole, y, attention)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 4, 8, 8, generator=g) + 0.1  # positive: weights stay in [0, 1]
    hole = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    hole[0, :, 2:5, 3:6] = True
    hole[1, :, 5:7, 1:4] = True
    y, att = coherent_semantic_attention(x, hole, return_attention=True)
    return x, hole, y, att


def test_positions_and_best_match(toy):
    _, hole, _, att = toy
    cells = A.hole_positions(att, 0)
    assert cells == [(r, c) for r in range(2, 5) for c in range(3, 6)]
    assert A.hole_positions(att, 1) == [(r, c) for r in range(5, 7) for c in range(1, 4)]
    assert A.hole_index(att, 0, 3, 4) == 4
    r, c = A.best_match(att, 0, 3, 4)
    assert not hole[0, 0, r, c]  # matches are known cells
    assert A.cell_box(2, 3, (32, 32), (256, 256)) == (24.0, 16.0, 8.0, 8.0)


@pytest.mark.parametrize("sample,row,col", [(0, 0, 0), (0, 8, 2), (0, -1, 3), (2, 3, 4), (1, 3, 4)])
def test_bad_positions_raise(toy, sample, row, col):
    att = toy[3]
    with pytest.raises(ValueError):
        A.plot_score_map(att, sample, row, col)
    with pytest.raises(ValueError):
        A.best_match(att, sample, row, col)


def test_score_map_marks_the_argmax(toy):
    _, hole, _, att = toy
    fig = A.plot_score_map(att, 0, 3, 4)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    data = ax.images[0].get_array()  # masked (h, w) score map
    assert data.mask[hole[0, 0].numpy()].all() and not data.mask[~hole[0, 0].numpy()].any()
    expected = att.score_map(0, 3, 4)
    assert np.allclose(data.filled(np.nan)[~hole[0, 0].numpy()], expected[~hole[0, 0]].numpy())
    lines = {line.get_label(): line for line in ax.lines}
    mx, my = lines["best match"].get_xdata()[0], lines["best match"].get_ydata()[0]
    k = int(np.nanargmax(data.filled(np.nan)))
    assert (my, mx) == (k // 8, k % 8) == A.best_match(att, 0, 3, 4)
    assert (lines["query"].get_ydata()[0], lines["query"].get_xdata()[0]) == (3, 4)


def test_score_map_on_image_draws_both_boxes(toy):
    att = toy[3]
    image = torch.zeros(1, 3, 64, 64)
    fig = A.plot_score_map(att, 1, 6, 2, image=image)
    assert len(fig.axes) == 3  # score map, its colour bar, the image
    img_ax = next(ax for ax in fig.axes if "on the image" in ax.get_title())
    boxes = {p.get_label(): p for p in img_ax.patches if isinstance(p, Rectangle)}
    mr, mc = A.best_match(att, 1, 6, 2)
    assert boxes["query cell"].get_xy() == (2 * 8 - 0.5, 6 * 8 - 0.5)
    assert boxes["match cell"].get_xy() == (mc * 8 - 0.5, mr * 8 - 0.5)


def test_blend_weights_maps(toy):
    _, hole, _, att = toy
    fig = A.plot_blend_weights(att, sample=0)
    prev_ax, match_ax = (ax for ax in fig.axes if ax.get_title().startswith("weight_"))
    prev, match = prev_ax.images[0].get_array(), match_ax.images[0].get_array()
    h0 = hole[0, 0].numpy()
    assert prev.mask[~h0].all() and not prev.mask[h0].any()
    assert np.allclose(prev.data[h0], att.weight_prev[0][hole[0, 0]].numpy())
    assert np.allclose(match.data[h0], att.weight_match[0][hole[0, 0]].numpy())
    assert np.allclose(prev.data[h0] + match.data[h0], 1.0, atol=1e-5)  # the two ratios add up to one


def test_chain_arrows_follow_raster_order(toy):
    att = toy[3]
    fig = A.plot_chain(att, sample=0)
    quiver = next(c for c in fig.axes[0].collections if isinstance(c, Quiver))
    cells = A.hole_positions(att, 0)
    assert len(quiver.U) == len(cells) - 1
    assert (quiver.U[0], quiver.V[0]) == (1.0, 0.0)  # (2,3) -> (2,4)
    assert (quiver.U[2], quiver.V[2]) == (-2.0, 1.0)  # end of a row -> start of the next one


def test_feature_mask_figure_counts_cells():
    mask = centre_mask(1, 256)
    hole = feature_hole_mask(mask)
    fig = A.plot_feature_mask(mask, hole, coverage=hole.float())
    assert len(fig.axes) == 4  # mask, feature mask, coverage + colour bar
    assert "252 hole cells" in fig.axes[1].get_title()
    assert sum(isinstance(p, Rectangle) for p in fig.axes[0].patches) == 252


def test_feature_panels():
    x = torch.rand(1, 3, 4, 4)
    hole = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    hole[..., 1:3, 1:3] = True
    fig = A.plot_feature_panels({"a": x, "b": x[0] * 2}, hole=hole)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    assert len(fig.axes[0].patches) == 4
    with pytest.raises(ValueError):
        A.plot_feature_panels({"bad": torch.rand(4, 4, 4)})


def test_explorer_redraws_on_slider(toy):
    att = toy[3]
    explorer = attention_explorer(att, torch.zeros(2, 3, 64, 64))
    assert explorer.position == (2, 3) and explorer.slider.max == 8
    explorer.slider.value = 4
    assert explorer.position == (3, 4)
    assert explorer.figure.axes[0].get_title().startswith("scores of hole cell (3, 4)")
    explorer.sample.value = 1
    assert explorer.slider.max == 5 and explorer.position == A.hole_positions(att, 1)[4]
    explorer.select(6, 3)
    assert explorer.position == (6, 3) and "(6, 3)" in explorer.figure.axes[0].get_title()
    with pytest.raises(ValueError):
        explorer.select(0, 0)


def test_shift_copy_and_contextual_attention(toy):
    x, hole, y, att = toy
    shifted = shift_copy(x, hole)
    B, C, h, w = x.shape
    xf = x.flatten(2)  # (B,C,N)
    for b in range(B):
        for r, c in A.hole_positions(att, b):
            k = int(att.match[b, r, c])
            assert torch.equal(shifted[b, :, r, c], xf[b, :, k])  # copies CSA's best match
    assert torch.equal(shifted[~hole.expand_as(x)], x[~hole.expand_as(x)])
    soft = contextual_attention(x, hole, scale=10.0)
    assert torch.equal(soft[~hole.expand_as(x)], x[~hole.expand_as(x)])
    assert not torch.allclose(soft, shifted)
    assert torch.allclose(contextual_attention(x, hole, scale=1e6), shifted, atol=1e-5)  # hard limit
    # a soft blend of known features stays inside their per-channel range
    known = xf.transpose(1, 2)[~hole.flatten(1)]  # (K,C)
    hole_out = soft.flatten(2).transpose(1, 2)[hole.flatten(1)]  # (T,C)
    assert (hole_out <= known.max(0).values + 1e-6).all() and (hole_out >= known.min(0).values - 1e-6).all()


def test_run_with_csa_input_and_demo_image():
    torch.manual_seed(0)
    model = CSAGenerator(ngf=4, image_size=32).eval()
    image, name = A.demo_image(32)
    assert image.shape == (1, 3, 32, 32) and -1 <= image.min() and image.max() <= 1 and name
    mask = centre_mask(1, 32)
    with torch.no_grad():
        out, x = A.run_with_csa_input(model, image, mask)
    assert x.shape == out.csa_feature.shape == (1, 32, 4, 4)
    assert torch.allclose(coherent_semantic_attention(x, out.feature_hole.bool()), out.csa_feature)
    assert out.attention is not None and not model.refine_net.csa._forward_hooks  # hook removed


def test_plot_maps_and_curves():
    fig = A.plot_maps({"image": torch.zeros(1, 3, 8, 8), "map": torch.rand(1, 1, 5, 5)})
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in titled] == ["image", "map"]
    assert titled[0].images[0].get_array().shape == (8, 8, 3) and len(fig.axes) == 3  # + one colour bar
    fig = A.plot_curves(torch.linspace(-1, 1, 5), {"a": torch.zeros(5), "b": np.ones(5)}, xlabel="x")
    assert [line.get_label() for line in fig.axes[0].lines] == ["a", "b"]
    with pytest.raises(ValueError):
        A.plot_maps({})


def test_contextual_attention_at_scale_zero_is_the_known_mean(toy):
    x, hole, _, _ = toy
    flat = contextual_attention(x, hole, scale=0.0).flatten(2).transpose(1, 2)  # (B,N,C)
    xf, hf = x.flatten(2).transpose(1, 2), hole.flatten(1)
    for b in range(x.shape[0]):
        assert torch.allclose(flat[b][hf[b]], xf[b][~hf[b]].mean(0).expand(int(hf[b].sum()), -1), atol=1e-6)


def test_figures_render_as_png_in_notebooks(toy):
    png = A.plot_chain(toy[3])._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def _weights(match: list[float]):
    """An attention-like record with 4 hole cells of 2x3: weight_match as given, weight_prev = 1 - it."""
    hole = torch.tensor([[[False, True, True], [True, True, False]]])  # (1,2,3)
    wm = torch.ones(1, 2, 3)
    wm[hole] = torch.tensor(match)
    wp = torch.where(hole, 1 - wm, torch.zeros(1, 2, 3))
    from types import SimpleNamespace
    return SimpleNamespace(hole=hole, weight_match=wm, weight_prev=wp, size=(2, 3))


def test_blend_summary_by_hand():
    s = A.blend_summary(_weights([1.0, -0.2, 0.1, -0.1]))
    assert s["cells"] == 4
    assert s["match_mean"] == pytest.approx(0.2) and s["prev_mean"] == pytest.approx(0.8)
    assert (s["match_min"], s["match_max"]) == pytest.approx((-0.2, 1.0))
    assert s["outside"] == pytest.approx(0.5)  # cells with -0.2 (prev 1.2) and -0.1 (prev 1.1)


def test_describe_blend_says_when_the_matches_are_barely_used():
    barely = A.describe_blend(_weights([1.0, -0.2, 0.1, -0.1]))
    assert "barely uses its matches" in barely and "0.20 of its best match" in barely
    assert "50% of the hole cells have weights outside [0, 1]" in barely
    copies = A.describe_blend(_weights([1.0, 0.9, 0.8, 0.9]))
    assert "mostly copies its best matches" in copies and "outside" not in copies
    assert "mixes both" in A.describe_blend(_weights([1.0, 0.5, 0.4, 0.3]))


def test_score_map_hides_the_hole_on_the_image(toy):
    _, hole, _, att = toy
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    fig = A.plot_score_map(att, 0, 3, 4, image=image[0])
    overlay = fig.axes[1].images[-1].get_array()  # (h,w,4) RGBA over the image
    h0 = hole[0, 0].numpy()
    assert np.all(overlay[h0][:, 3] == 1.0)  # opaque: the hidden content cannot show through
    assert np.all(overlay[~h0][:, 3] < 1.0)  # the known cells stay visible under their scores


@pytest.mark.parametrize("make", [
    lambda att: A.plot_chain(att), lambda att: A.plot_blend_weights(att), lambda att: A.plot_score_map(att, 0, 3, 4),
    lambda att: A.plot_curves([0, 1], {"a": [0, 1]}), lambda att: A.plot_maps({"m": torch.rand(8, 8)}),
])
def test_notebook_figures_are_wide_enough_for_a_projector(toy, make):
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(make(toy[3])._repr_png_())) as png:
        assert png.width >= 1000, png.size


def test_blend_weight_scale_survives_an_outlier(toy):
    """One extrapolating cell (weight_match 20.5, as the demo model has) must not set the colour scale."""
    _, hole, _, att = toy
    outlier = A.CSAAttention(**{**att.__dict__, "weight_match": att.weight_match.clone(),
                                "weight_prev": att.weight_prev.clone()})
    outlier.weight_match[0, 3, 4], outlier.weight_prev[0, 3, 4] = 20.5, -19.5
    fig = A.plot_blend_weights(outlier, sample=0)
    prev_ax, match_ax = (ax for ax in fig.axes if ax.get_title().startswith("weight_"))
    h0 = hole[0, 0]
    for ax, values, centre in ((prev_ax, outlier.weight_prev[0][h0], 0.0), (match_ax, outlier.weight_match[0][h0], 1.0)):
        norm = ax.images[0].norm
        assert norm.vmin == pytest.approx(2 * centre - norm.vmax)  # symmetric around the centre
        others = np.abs(values.numpy() - centre)
        others = np.sort(others)[:-1]  # every cell but the outlier
        assert norm.vmax - centre < 5  # the outlier (|w - centre| = 19.5) is clipped, not the scale's end
        assert norm.vmax - centre >= np.percentile(others, 90)  # the other cells still spread over the scale
        assert ax.get_title().endswith("clipped: 1")
