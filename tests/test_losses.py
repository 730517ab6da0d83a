"""Losses: RaLSGAN and L1 vs hand-computed numbers, consistency vs a literal loop, and per-term gradients."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from csa_lib.config import Config
from csa_lib.losses import (GENERATOR_TERMS, LossNetworks, consistency_loss, discriminator_losses, generator_losses,
                            gram_matrix, match_channels, objective_terms, perceptual_loss, ralsgan_d_loss,
                            ralsgan_g_loss, reconstruction_loss, style_loss)
from conftest import centre_mask

pytestmark = pytest.mark.filterwarnings("ignore:VGG16Features\\(weights=None\\)")


# --------------------------------------------------------------------------------------------
# RaLSGAN and L1, hand-computed
# --------------------------------------------------------------------------------------------
# Two samples of 1x1x2 logits. Means over ALL elements: E[r] = (1+3+2+6)/4 = 3, E[f] = (0+2+1+1)/4 = 1.
REAL = torch.tensor([1.0, 3.0, 2.0, 6.0]).view(2, 1, 1, 2)
FAKE = torch.tensor([0.0, 2.0, 1.0, 1.0]).view(2, 1, 1, 2)


def test_ralsgan_d_loss_hand_computed():
    # r - E[f] - 1 = [-1, 1, 0, 4] -> squares [1, 1, 0, 16], mean 4.5
    # f - E[r] + 1 = [-2, 0, -1, -1] -> squares [4, 0, 1, 1], mean 1.5
    # L_D = (4.5 + 1.5) / 2 = 3.0   (a per-sample mean would give 2.25 here)
    assert ralsgan_d_loss(REAL, FAKE).item() == pytest.approx(3.0, abs=1e-6)


def test_ralsgan_g_loss_hand_computed():
    # r - E[f] + 1 = [1, 3, 2, 6] -> squares [1, 9, 4, 36], mean 12.5
    # f - E[r] - 1 = [-4, -2, -3, -3] -> squares [16, 4, 9, 9], mean 9.5
    # L_G = (12.5 + 9.5) / 2 = 11.0
    assert ralsgan_g_loss(REAL, FAKE).item() == pytest.approx(11.0, abs=1e-6)


def test_ralsgan_perfect_discriminator():
    # r = 1, f = 0 everywhere: D-loss terms (1-0-1)^2 = 0 and (0-1+1)^2 = 0; G-loss (1+1)^2 = 4, (0-1-1)^2 = 4
    r, f = torch.ones(3, 512, 2, 2), torch.zeros(3, 512, 2, 2)
    assert ralsgan_d_loss(r, f).item() == 0.0
    assert ralsgan_g_loss(r, f).item() == pytest.approx(4.0)


def test_reconstruction_loss_hand_computed():
    pred = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5, 0.5]).view(1, 3, 1, 2)
    target = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, -0.5]).view(1, 3, 1, 2)
    # |diff| = [0, 1, 2, 1, 0.5, 1] -> mean 5.5 / 6
    assert reconstruction_loss(pred, target).item() == pytest.approx(5.5 / 6)


# --------------------------------------------------------------------------------------------
# Consistency loss vs literal loops
# --------------------------------------------------------------------------------------------
def literal_consistency(feature, target, hole, over_hole=True):
    """Slow reference: explicit loops over samples, cells and channels."""
    B, C, h, w = feature.shape
    total, count = 0.0, 0
    for b in range(B):
        for y in range(h):
            for x in range(w):
                inside = hole[b, 0, y, x].item() == 1.0
                if over_hole and not inside:
                    continue
                count += 1
                for c in range(C):
                    f = feature[b, c, y, x].item() if inside else 0.0
                    total += (f - target[b, c, y, x].item()) ** 2
    return total / (count * C) if count else 0.0


@pytest.fixture
def small_case():
    g = torch.Generator().manual_seed(0)
    feature = torch.randn(2, 3, 4, 4, generator=g)
    target = torch.randn(2, 3, 4, 4, generator=g)
    hole = (torch.rand(2, 1, 4, 4, generator=g) > 0.5).float()
    hole[0, 0, 0, 0], hole[1, 0, 3, 3] = 1.0, 0.0
    return feature, target, hole


def test_consistency_over_hole_matches_literal_loop(small_case):
    feature, target, hole = small_case
    expected = literal_consistency(feature, target, hole, over_hole=True)
    assert consistency_loss(feature, target, hole).item() == pytest.approx(expected, rel=1e-5)
    # only hole cells count: changing the feature at a known cell changes nothing
    moved = feature.clone()
    moved[1, :, 3, 3] += 10.0
    assert consistency_loss(moved, target, hole).item() == pytest.approx(expected, rel=1e-5)


def test_consistency_full_map_variant_matches_literal_loop(small_case):
    feature, target, hole = small_case
    expected = literal_consistency(feature, target, hole, over_hole=False)
    assert consistency_loss(feature, target, hole, over_hole=False).item() == pytest.approx(expected, rel=1e-5)
    assert expected != pytest.approx(literal_consistency(feature, target, hole, over_hole=True), rel=1e-3)


def test_consistency_target_is_detached(small_case):
    feature, target, hole = small_case
    feature, target = feature.requires_grad_(True), target.requires_grad_(True)
    consistency_loss(feature, target, hole).backward()
    assert target.grad is None
    assert feature.grad.abs().sum() > 0
    assert torch.all(feature.grad * (1 - hole) == 0)  # no gradient at known cells


def test_consistency_zero_hole_is_zero_and_finite(small_case):
    feature, target, _ = small_case
    feature = feature.requires_grad_(True)
    loss = consistency_loss(feature, target, torch.zeros(2, 1, 4, 4))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(loss)
    assert torch.all(feature.grad == 0)


def test_channel_reduction_contiguous_groups(small_case):
    _, _, hole = small_case
    g = torch.Generator().manual_seed(1)
    feature, target = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 12, 4, 4, generator=g)
    # C = 3 from 12 target channels: channel k = mean of target channels 4k .. 4k+3
    reduced = torch.stack([(target[:, 4 * k] + target[:, 4 * k + 1] + target[:, 4 * k + 2] + target[:, 4 * k + 3]) / 4
                           for k in range(3)], dim=1)
    torch.testing.assert_close(match_channels(target, 3), reduced)
    expected = literal_consistency(feature, reduced, hole)
    assert consistency_loss(feature, target, hole).item() == pytest.approx(expected, rel=1e-5)


def test_channel_reduction_not_divisible():
    target = torch.arange(8.0).view(1, 8, 1, 1)
    # 8 -> 3 channels: adaptive bins [0,3), [2,6), [5,8): means 1, 3.5, 6
    assert match_channels(target, 3).flatten().tolist() == pytest.approx([1.0, 3.5, 6.0])
    assert match_channels(target, 8) is target


def test_consistency_shape_errors():
    with pytest.raises(ValueError, match="same batch and spatial size"):
        consistency_loss(torch.zeros(1, 4, 4, 4), torch.zeros(1, 8, 2, 2), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="hole must be"):
        consistency_loss(torch.zeros(1, 4, 4, 4), torch.zeros(1, 8, 4, 4), torch.zeros(1, 4, 4))


# --------------------------------------------------------------------------------------------
# Full objectives with the real models (64 px: the feature discriminator needs pool3 >= 8x8)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models():
    """Tiny real models and one generator forward, shared by the tests below (none of them steps or
    mutates the models; the discriminator test clears .grad before and after its backward)."""
    from csa_lib.model import build_models
    from csa_lib.vgg import VGG16Features

    torch.manual_seed(0)
    cfg = Config.smoke(image_size=64, ngf=4, ndf=4)
    generator, patch_disc, feature_disc = build_models(cfg)
    vgg = VGG16Features(weights=None)
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    out = generator(image, centre_mask(1, 64))
    return cfg, generator, patch_disc, feature_disc, vgg, image, out


def batch(image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The training batch the `models` forward ran on: the image and its centre mask."""
    return {"image": image, "mask": centre_mask(image.shape[0], image.shape[-1])}


def grad_size(term: torch.Tensor, params: list[torch.Tensor]) -> float:
    """Sum of |d term / d params| (0 when the term has no path to them)."""
    if not term.requires_grad:
        return 0.0
    grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
    return sum(g.abs().sum().item() for g in grads if g is not None)


def detached(out):
    return dataclasses.replace(out, **{f.name: getattr(out, f.name).detach() for f in dataclasses.fields(out)
                                       if isinstance(getattr(out, f.name), torch.Tensor)})


def test_every_generator_term_reaches_the_generator(models):
    cfg, generator, patch_disc, feature_disc, vgg, image, out = models
    coarse_params = list(generator.coarse_net.parameters())
    refine_params = list(generator.refine_net.parameters())
    terms = generator_losses(batch(image), out, LossNetworks(patch_disc, feature_disc, vgg), cfg)
    assert set(terms) == set(GENERATOR_TERMS) | {"total"}
    for name in GENERATOR_TERMS:
        assert torch.isfinite(terms[name]), name
        params = coarse_params if name == "l1_coarse" else refine_params
        assert grad_size(terms[name], params) > 0, f"{name} sends no gradient to the generator"
    assert grad_size(terms["l1_coarse"], refine_params) == 0

    # Sanity: the same computation on detached generator outputs (the original's `.data` pattern) gives
    # no generator gradient at all, so the check above really discriminates.
    frozen = generator_losses(batch(image), detached(out), LossNetworks(patch_disc, feature_disc, vgg), cfg)
    for name in GENERATOR_TERMS:
        assert grad_size(frozen[name], coarse_params + refine_params) == 0, name
        torch.testing.assert_close(frozen[name], terms[name].detach())


def test_generator_terms_use_the_raw_refined_output_and_weights(models):
    cfg, generator, patch_disc, feature_disc, vgg, image, out = models
    cfg = cfg.replace(lambda_l1=2.0, lambda_adv=3.0, lambda_consistency=5.0)
    terms = generator_losses(batch(image), out, LossNetworks(patch_disc, feature_disc, vgg), cfg)
    t = {k: v.item() for k, v in terms.items()}
    expected_total = (2.0 * (t["l1_coarse"] + t["l1_refined"]) + 3.0 * (t["adv_image"] + t["adv_feature"])
                      + 5.0 * (t["consistency_csa"] + t["consistency_decoder"]))
    assert t["total"] == pytest.approx(expected_total, rel=1e-5)
    with torch.no_grad():
        on_refined = ralsgan_g_loss(patch_disc(image), patch_disc(out.refined)).item()
        on_composite = ralsgan_g_loss(patch_disc(image), patch_disc(out.composite)).item()
        target = vgg(image)["relu4_3"]
        csa = consistency_loss(out.csa_feature, target, out.feature_hole).item()
        csa_full = consistency_loss(out.csa_feature, target, out.feature_hole, over_hole=False).item()
    assert t["adv_image"] == pytest.approx(on_refined, rel=1e-5) and on_refined != pytest.approx(on_composite)
    assert t["l1_refined"] == pytest.approx(reconstruction_loss(out.refined, image).item(), rel=1e-6)
    assert t["consistency_csa"] == pytest.approx(csa, rel=1e-5) and csa != pytest.approx(csa_full, rel=1e-3)
    full = generator_losses(batch(image), out, LossNetworks(patch_disc, feature_disc, vgg),
                            cfg.replace(consistency_over_hole=False))
    assert full["consistency_csa"].item() == pytest.approx(csa_full, rel=1e-5)


def test_discriminator_losses_do_not_touch_the_generator(models):
    cfg, generator, patch_disc, feature_disc, vgg, image, out = models
    nets = (generator, patch_disc, feature_disc, vgg)
    for net in nets:
        net.zero_grad(set_to_none=True)
    terms = discriminator_losses(batch(image), out, LossNetworks(patch_disc, feature_disc, vgg))
    assert terms["total"].item() == pytest.approx(0.5 * (terms["d_image"].item() + terms["d_feature"].item()))
    with torch.no_grad():
        expected = ralsgan_d_loss(patch_disc(image), patch_disc(out.refined)).item()
    assert terms["d_image"].item() == pytest.approx(expected, rel=1e-5)
    terms["total"].backward()
    assert all(p.grad is None for p in generator.parameters())
    assert all(p.grad is None for p in vgg.parameters())
    assert sum(p.grad.abs().sum().item() for p in patch_disc.parameters() if p.grad is not None) > 0
    assert sum(p.grad.abs().sum().item() for p in feature_disc.parameters() if p.grad is not None) > 0
    for net in nets:
        net.zero_grad(set_to_none=True)


def test_hole_weighted_l1_by_hand():
    # 1x1x2x2 image: errors 1, 2, 3, 4; the hole is the last pixel. Plain mean 10/4; weight 3: (1+2+3+3*4)/4.
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.zeros_like(pred)
    hole = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]])
    assert reconstruction_loss(pred, target).item() == pytest.approx(2.5)
    assert reconstruction_loss(pred, target, hole, 1.0).item() == pytest.approx(2.5)
    assert reconstruction_loss(pred, target, hole, 3.0).item() == pytest.approx(18 / 4)
    with pytest.raises(ValueError, match="hole mask"):
        reconstruction_loss(pred, target, None, 3.0)


def test_generator_l1_terms_follow_the_hole_weight(models):
    cfg, generator, patch_disc, feature_disc, vgg, image, out = models
    hole = centre_mask(1, 64)
    weighted = generator_losses({"image": image, "mask": hole}, out, LossNetworks(patch_disc, feature_disc, vgg),
                                cfg.replace(l1_hole_weight=6.0))
    for name, pred in (("l1_coarse", out.coarse), ("l1_refined", out.refined)):
        expected = reconstruction_loss(pred, image, hole, 6.0).item()
        assert weighted[name].item() == pytest.approx(expected, rel=1e-6)
        assert expected > reconstruction_loss(pred, image).item()


def test_perceptual_and_style_hand_computed():
    """One 1x1 tap with two channels: |Φ| differences and Gram entries written out by hand."""
    fake = {"pool1": torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)}
    real = {"pool1": torch.tensor([4.0, 0.0]).view(1, 2, 1, 1)}
    # mean(|1-4|, |2-0|) = 2.5
    assert perceptual_loss(fake, real, taps=("pool1",)).item() == pytest.approx(2.5)
    # G = f fᵀ / (C h w) = f fᵀ / 2: fake [[1,2],[2,4]]/2, real [[16,0],[0,0]]/2 -> mean |diff| = (15+2+2+4)/2/4
    assert gram_matrix(fake["pool1"])[0].tolist() == [[0.5, 1.0], [1.0, 2.0]]
    assert style_loss(fake, real, taps=("pool1",)).item() == pytest.approx(23 / 8)
    # summed over taps, and zero for identical features
    two = {"pool1": fake["pool1"], "pool2": 2 * fake["pool1"]}
    assert perceptual_loss(two, {"pool1": real["pool1"], "pool2": 2 * real["pool1"]},
                           taps=("pool1", "pool2")).item() == pytest.approx(2.5 + 5.0)
    assert style_loss(two, two, taps=("pool1", "pool2")).item() == 0.0


def test_perceptual_and_style_weights_enter_the_total(models):
    cfg, generator, patch_disc, feature_disc, vgg, image, out = models
    nets = LossNetworks(patch_disc, feature_disc, vgg)
    base = generator_losses(batch(image), out, nets, cfg)
    weighted = generator_losses(batch(image), out, nets, cfg.replace(lambda_perceptual=3.0, lambda_style=7.0))
    with torch.no_grad():
        real, fake = vgg(image), vgg(out.refined)
    assert weighted["perceptual"].item() == pytest.approx(perceptual_loss(fake, real).item(), rel=1e-5)
    assert weighted["style"].item() == pytest.approx(style_loss(fake, real).item(), rel=1e-5)
    extra = 3.0 * weighted["perceptual"].item() + 7.0 * weighted["style"].item()
    assert extra > 0 and weighted["total"].item() == pytest.approx(base["total"].item() + extra, rel=1e-5)


def test_one_shared_vgg_pass_of_the_output_gives_the_same_losses_and_gradients():
    """The trainer passes one `vgg(out.refined, upto="pool3")` (with graph) to both steps: same values and
    the same generator gradient as each loss computing its own pass. In float64: the two graphs add the
    gradients that meet at the output in another order, which float32 round-off would show."""
    from csa_lib.model import build_models
    from csa_lib.vgg import VGG16Features

    torch.manual_seed(0)
    cfg = Config.smoke(image_size=64, ngf=4, ndf=4).replace(lambda_perceptual=2.0, lambda_style=3.0)
    generator, patch_disc, feature_disc = (m.double() for m in build_models(cfg))
    vgg = VGG16Features(weights=None).double()
    image = torch.rand(1, 3, 64, 64, dtype=torch.float64) * 2 - 1
    out = generator(image, centre_mask(1, 64).double())
    nets = LossNetworks(patch_disc, feature_disc, vgg)
    refine_params = list(generator.refine_net.parameters())
    shared = vgg(out.refined, upto="pool3")
    assert "relu4_3" not in shared
    separate_g = generator_losses(batch(image), out, nets, cfg)
    shared_g = generator_losses(batch(image), out, nets, cfg, fake_features=shared)
    for name in GENERATOR_TERMS:
        torch.testing.assert_close(shared_g[name], separate_g[name], rtol=0, atol=0)
    a = torch.autograd.grad(separate_g["total"], refine_params, retain_graph=True)
    b = torch.autograd.grad(shared_g["total"], refine_params, retain_graph=True)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    separate_d = discriminator_losses(batch(image), out, nets)
    shared_d = discriminator_losses(batch(image), out, nets, fake_features=shared)
    torch.testing.assert_close(shared_d["d_feature"], separate_d["d_feature"], rtol=0, atol=0)
    assert shared_d["d_feature"].grad_fn is not None  # the feature discriminator still trains
    d_grads = torch.autograd.grad(shared_d["total"], refine_params, allow_unused=True)
    assert all(g is None for g in d_grads)  # and nothing reaches the generator from the D step


def test_objective_terms_are_the_weights_generator_losses_uses(models):
    """`objective_terms` (the walkthrough's table) sums to generator_losses' total, and reads the paper's ratios."""
    cfg, generator, patch_disc, feature_disc, vgg, image, out = models
    cfg = cfg.replace(lambda_l1=2.0, lambda_adv=3.0, lambda_consistency=5.0,  # distinct, so a swap shows
                      lambda_perceptual=7.0, lambda_style=11.0)
    terms = generator_losses(batch(image), out, LossNetworks(patch_disc, feature_disc, vgg), cfg)
    rows = objective_terms(cfg)
    assert [r["term"] for r in rows] == list(GENERATOR_TERMS)
    total = sum(r["weight"] * terms[r["term"]].item() for r in rows)
    assert total == pytest.approx(terms["total"].item(), rel=1e-5)
    default = {r["term"]: r for r in objective_terms(Config())}
    assert [default[t]["weight"] for t in ("l1_refined", "adv_image", "consistency_csa")] == [100.0, 0.2, 1.0]
    assert [default[t]["paper_weight"] for t in ("l1_refined", "adv_image", "consistency_csa")] == \
        pytest.approx([1.0, 0.002, 0.01])  # the paper's 1 : 0.002 : 0.01
    no_vgg = {r["term"]: r["active"] for r in objective_terms(Config(use_vgg=False))}
    assert no_vgg == {"l1_coarse": True, "l1_refined": True, "adv_image": True, "adv_feature": False,
                      "consistency_csa": False, "consistency_decoder": False, "perceptual": False, "style": False}
