"""The architecture record and figure come from the modules: sizes by hand, CSA at 1/8, what each D reads."""
from __future__ import annotations

import pytest
import torch
from matplotlib.patches import Rectangle

from csa_lib.notebook import architecture
from csa_lib.masks import center_mask
from csa_lib.model import CSAGenerator


@pytest.fixture(scope="module")
def stages_64():
    return architecture.trace_architecture(ngf=8, ndf=4, image_size=64)


def test_stages_and_sizes_by_hand(stages_64):
    assert list(stages_64) == list(architecture.STAGES)
    coarse = stages_64["coarse net"]
    # 64 px: depth 6; the encoder halves the side each level (32 .. 1), widths ngf * min(2^k, 8)
    assert [(l.channels, l.height) for l in coarse[:6]] == [(8, 32), (16, 16), (32, 8), (64, 4), (64, 2), (64, 1)]
    assert (coarse[-1].channels, coarse[-1].height, coarse[-1].width) == (3, 64, 64)
    refine = stages_64["refinement net"]
    csa = [l for l in refine if l.kind == "CSA"]
    assert len(csa) == 1 and (csa[0].channels, csa[0].height, csa[0].width) == (8 * 8, 8, 8)  # 8·ngf @ 64/8
    before = refine[refine.index(csa[0]) - 1]
    assert before.kind == "conv 3x3" and before.name == "refine_net.levels.2.widen"  # after level 3's widening conv
    assert refine[0].kind == "conv 3x3" and refine[-1].channels == 3
    # patch D: 64 -> 32 -> 16 -> 8 -> 7 -> 6 (three stride-2 k4 p1 convs, two stride-1)
    assert [l.height for l in stages_64["image patch D"]] == [32, 16, 8, 7, 6]
    vgg = stages_64["VGG16 to pool3"]
    assert (vgg[-1].kind, vgg[-1].channels, vgg[-1].height) == ("max-pool /2", 256, 8)  # pool3 at 1/8
    feature = stages_64["feature patch D"]
    assert [(l.channels, l.height) for l in feature] == [(32, 4), (32, 2), (32, 1)]  # 8·ndf wide


def test_trace_matches_a_real_forward():
    """The meta-device trace gives the shapes a real generator produces on real tensors."""
    model = CSAGenerator(ngf=4, image_size=64).eval()
    stages = architecture.trace_architecture(ngf=4, ndf=4, image_size=64)
    real = architecture.trace_module(model, "generator", torch.rand(1, 3, 64, 64) * 2 - 1, center_mask(64)[None])
    traced = stages["coarse net"] + stages["refinement net"]
    assert [(l.name, l.channels, l.height, l.width) for l in real] == \
        [(l.name, l.channels, l.height, l.width) for l in traced]
    assert model.refine_net.csa.enabled  # the trace leaves no switch behind
    with pytest.raises(ValueError, match="at least 64"):
        architecture.trace_architecture(image_size=32)


def test_default_is_the_paper_at_256():
    stages = architecture.trace_architecture()
    lines = architecture.stage_summary(stages)
    assert any("CSA at 512@32x32 (1/8" in line for line in lines)
    assert stages["image patch D"][-1].height == 30
    assert (stages["feature patch D"][-1].channels, stages["feature patch D"][-1].height) == (512, 4)
    assert "pool3" in lines[-1]


def test_figure_has_one_bar_per_layer(stages_64):
    fig = architecture.plot_architecture(stages_64, image_size=64)
    for ax, (stage, layers) in zip(fig.axes, stages_64.items()):
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(bars) == len(layers), stage
        heights = [b.get_height() for b in bars]
        sides = [l.height for l in layers]
        assert sides.index(max(sides)) == heights.index(max(heights))  # taller bar = bigger output
    refine_ax = fig.axes[1]
    assert any(t.get_text().startswith("CSA at 1/8") for t in refine_ax.texts)
