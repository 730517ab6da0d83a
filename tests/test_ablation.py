"""The CSA ablation switches: "trained" is the plain forward bit for bit, "off" and "random" change it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from csa_lib.eval import ablation
from csa_lib.csa_layer import coherent_semantic_attention
from csa_lib.model import CSAGenerator
from conftest import centre_mask


@pytest.fixture(scope="module")
def model_and_batch():
    torch.manual_seed(0)
    model = CSAGenerator(ngf=4, image_size=32).eval()
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    return model, image, centre_mask(2, 32)


def test_trained_is_bit_identical_and_others_change(model_and_batch):
    model, image, mask = model_and_batch
    with torch.no_grad():
        plain = model(image, mask)
    fills = ablation.fill_modes(model, image, mask)
    assert list(fills) == ["trained", "off", "random"]
    assert torch.equal(fills["trained"], plain.composite)
    hole = mask.expand_as(image) > 0.5
    for mode in ("off", "random"):
        assert not torch.equal(fills[mode], plain.composite), mode
        assert torch.equal(fills[mode][~hole], image[~hole]), mode  # known pixels stay the photo's
    assert model.refine_net.csa.enabled and model.refine_net.csa.match_fn is None  # restored


def test_off_passes_the_csa_input_through(model_and_batch):
    model, image, mask = model_and_batch
    seen = {}
    hook = model.refine_net.csa.register_forward_hook(lambda _m, inputs, output: seen.update(x=inputs[0], y=output))
    try:
        with ablation.csa_matches(model, "off"), torch.no_grad():
            model(image, mask)
    finally:
        hook.remove()
    assert torch.equal(seen["x"], seen["y"])


def test_random_copies_known_cells_with_the_searchs_weights():
    """Random matches: every copied cell is a known cell, seeded, and D_max stays the search's."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 6, 6, generator=g) + 0.1
    hole = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    hole[..., 2:4, 1:5] = True
    _, trained = coherent_semantic_attention(x, hole, return_attention=True)
    pick = ablation.random_known_matches(torch.Generator().manual_seed(0))
    y, rand = coherent_semantic_attention(x, hole, return_attention=True, match_fn=pick)
    matches = rand.match[0][hole[0, 0]]
    assert not hole.flatten()[matches].any()  # known cells only
    assert not torch.equal(matches, trained.match[0][hole[0, 0]])
    assert torch.equal(rand.max_score, trained.max_score)
    first = rand.order[0, 0]  # the first hole cell copies its (random) match exactly
    assert torch.equal(y[0].flatten(1)[:, first], x[0].flatten(1)[:, matches[0]])
    again = ablation.random_known_matches(torch.Generator().manual_seed(0))
    assert torch.equal(coherent_semantic_attention(x, hole, match_fn=again), y)  # same seed, same fill


def test_metrics_by_hand_and_bad_input(model_and_batch):
    model, image, mask = model_and_batch
    truth = torch.zeros(1, 3, 32, 32)  # mid grey after the 8-bit round trip (127.5 -> 128)
    fill = truth.clone()
    fill[:, :, 8:24, 8:24] = 1.0  # white hole: error 127 on the 0..255 scale
    rows = ablation.ablation_rows(truth, mask[:1], {"trained": fill}, ["grey"])
    hole_err = 255 - 128
    assert rows[0]["psnr_hole"] == pytest.approx(10 * np.log10(255 ** 2 / hole_err ** 2))
    assert rows[0]["l1_hole"] == pytest.approx(hole_err / 255)
    assert rows[0]["change"] == 0.0  # the trained fill against itself
    means = ablation.mean_by_mode(rows + [{**rows[0], "psnr_hole": 0.0, "photo": "x"}])
    assert means["trained"]["psnr_hole"] == pytest.approx(rows[0]["psnr_hole"] / 2)
    two = ablation.ablation_rows(truth, mask[:1], {"trained": fill, "off": truth}, ["grey"])
    assert two[1]["change"] == pytest.approx(hole_err / 255)  # off = grey, trained = white: 127 apart
    assert two[1]["lpips"] == 0.0 < two[0]["lpips"]  # "off" is the truth itself here, the white square is not
    with pytest.raises(ValueError, match="mode must be one of"):
        with ablation.csa_matches(model, "shuffled"):
            pass
    with pytest.raises(TypeError, match="CSAGenerator"):
        with ablation.csa_matches(torch.nn.Linear(2, 2), "off"):
            pass
    with pytest.raises(ValueError, match="names"):
        ablation.ablation_rows(image, mask, {"trained": image}, ["one"])


def test_plot_shows_every_mode(model_and_batch):
    model, image, mask = model_and_batch
    fills = ablation.fill_modes(model, image, mask)
    rows = ablation.ablation_rows(image, mask, fills, ["a", "b"])
    fig = ablation.plot_ablation(image, mask, fills, rows, ["a", "b"])
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 2 * 5 and sum(t.startswith("random\n") for t in titles) == 2
    assert f"{rows[0]['psnr_hole']:.2f} dB" in titles[1]


def test_describe_ablation_reads_the_numbers():
    means = {"trained": {"psnr_hole": 20.0, "l1_hole": 0.1, "change": 0.0},
             "off": {"psnr_hole": 19.5, "l1_hole": 0.11, "change": 0.002},
             "random": {"psnr_hole": 18.0, "l1_hole": 0.12, "change": 0.004}}
    text = ablation.describe_ablation(means)
    assert "-0.50 dB" in text and "-2.00 dB" in text and "0.0040" in text and "leans little" in text
    means["random"]["change"] = 0.05
    assert "visibly shapes" in ablation.describe_ablation(means)
    with pytest.raises(ValueError, match="trained"):
        ablation.describe_ablation({"off": means["off"]})
