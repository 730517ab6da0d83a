"""CSA training losses: reconstruction (L1), consistency (L_c) and relativistic average LSGAN (L_adv).

Notation (paper, `docs/csa_spec.md` §5): I_gt = ground-truth image, I_ip = the network's
prediction, M = the hole region, Φ = VGG16 relu4_3, CSA(·) = a consistency tap of the generator.
The generator minimises

    L_G = λ_r · L_rec  +  λ_adv · L_adv  +  λ_c · L_c

with the original code's weights λ_r = 100 (on both the coarse and the refined output),
λ_adv = 0.2 (image and feature patch discriminators) and λ_c = 1 (both consistency taps), i.e. the
paper's 1 : 0.002 : 0.01 scaled by 100 (`Config.lambda_l1`, `lambda_adv`, `lambda_consistency`).

Two fixes against the original code (both were silently gradient-free there):
* the consistency terms reach the generator (the original rebuilt them as new leaf tensors);
* the feature-patch adversarial term is computed from the refined output with its graph (the original
  reused VGG features of `refined.data`).
Both discriminators see the raw refined output (`fake_B` in the original), not the composite.
Every loss is computed in float32, also under autocast (scalars returned as float32).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:  # type hints only: losses must not import the model at run time
    from .config import Config
    from .model import GeneratorOutput

GENERATOR_TERMS = ("l1_coarse", "l1_refined", "adv_image", "adv_feature", "consistency_csa", "consistency_decoder",
                   "perceptual", "style")
PERCEPTUAL_TAPS = ("pool1", "pool2", "pool3")  # the VGG16 taps the perceptual and style terms compare
PAPER_SCALE = 100.0  # the code's weights are the paper's 1 : 0.002 : 0.01 times 100 (docs/csa_spec.md §5)


# --------------------------------------------------------------------------------------------
# Relativistic average least-squares GAN
# --------------------------------------------------------------------------------------------
def ralsgan_d_loss(real: Tensor, fake: Tensor) -> Tensor:
    """RaLSGAN discriminator loss: logits real (B,...) and fake (B,...) -> scalar.

    With critic outputs r = D(I_gt), f = D(I_ip) and the "relativistic average" differences
    D_ra(r) = r - E[f], D_ra(f) = f - E[r] (E = mean over EVERY output element, batch included):

        L_D = ½ · ( E[(r - E[f] - 1)²] + E[(f - E[r] + 1)²] )

    i.e. real outputs should exceed the average fake by 1 and fake outputs trail the average real by 1.
    """
    real, fake = real.float(), fake.float()  # (B,...) float32, also under autocast
    return 0.5 * (torch.mean((real - fake.mean() - 1) ** 2) + torch.mean((fake - real.mean() + 1) ** 2))


def ralsgan_g_loss(real: Tensor, fake: Tensor) -> Tensor:
    """RaLSGAN generator loss: logits real (B,...) and fake (B,...) -> scalar.

    The labels of L_D swapped (the generator also pulls the real outputs down, through E[f]):

        L_adv = ½ · ( E[(r - E[f] + 1)²] + E[(f - E[r] - 1)²] )
    """
    real, fake = real.float(), fake.float()  # (B,...) float32, also under autocast
    return 0.5 * (torch.mean((real - fake.mean() + 1) ** 2) + torch.mean((fake - real.mean() - 1) ** 2))


# --------------------------------------------------------------------------------------------
# Reconstruction and consistency
# --------------------------------------------------------------------------------------------
def reconstruction_loss(pred: Tensor, target: Tensor, hole: Tensor | None = None, hole_weight: float = 1.0) -> Tensor:
    """L_rec = mean |I_ip - I_gt| over the whole image (hole and known pixels): (B,3,H,W) x2 -> scalar.

    With `hole` (B,1,H,W) and `hole_weight` != 1 each hole pixel's error counts `hole_weight` times
    (still divided by the number of all pixels): a deviation from the original, for small training
    budgets, where the plain mean spends most of the gradient on copying known pixels.
    """
    error = torch.abs(pred.float() - target.float())  # (B,3,H,W)
    if hole_weight == 1.0:
        return torch.mean(error)
    if hole is None:
        raise ValueError(f"hole_weight={hole_weight} needs the hole mask")
    return torch.mean(error * (1 + (hole_weight - 1) * hole.float()))


def match_channels(target: Tensor, channels: int) -> Tensor:
    """Average contiguous channel groups of target (B,Ct,h,w) -> (B,channels,h,w) (identity if equal).

    A generator narrower than the original (`ngf` < 64) has C = 8·ngf < 512 channels at its consistency
    taps, so Φ(I_gt) is reduced to C channels: output channel k is the mean of input channels
    [⌊k·Ct/C⌋, ⌈(k+1)·Ct/C⌉) (`F.adaptive_avg_pool1d` along channels), which is exactly a mean over
    contiguous groups of Ct/C channels when C divides Ct (every power-of-two `ngf` <= 64).
    """
    B, Ct, h, w = target.shape
    if Ct == channels:
        return target
    per_cell = target.permute(0, 2, 3, 1).reshape(B * h * w, 1, Ct)  # (B*h*w, 1, Ct)
    pooled = F.adaptive_avg_pool1d(per_cell, channels)  # (B*h*w, 1, C)
    return pooled.reshape(B, h, w, channels).permute(0, 3, 1, 2)  # (B,C,h,w)


def consistency_loss(feature: Tensor, target: Tensor, hole: Tensor, over_hole: bool = True) -> Tensor:
    """Consistency loss L_c: feature (B,C,h,w), target Φ(I_gt) (B,Ct,h,w), hole (B,1,h,w) {0,1} -> scalar.

    Paper: L_c = Σ_{y∈M} || CSA(I_ip)_y - Φ(I_gt)_y ||²₂, the squared distance between the generator's
    feature and the VGG16 relu4_3 feature of the ground truth at every hole cell y. We normalise it
    to a mean, so its size does not depend on the hole area or the width:

        over_hole=True:  L_c = Σ_{y∈M} Σ_c (F_{c,y} - Φ_{c,y})² / (|M| · C)      (0 when M is empty)
        over_hole=False: L_c = mean over all B·C·h·w of (M ⊙ F - Φ)²          (the original code: the
                         feature is masked but the target is not, so known cells add a constant Φ²
                         and the hole term is divided by the full map size)

    Φ(I_gt) is a constant target (detached). When C != Ct its channels are averaged down to C
    (`match_channels`).
    """
    if feature.dim() != 4 or target.dim() != 4 or feature.shape[0] != target.shape[0] \
            or feature.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"feature {tuple(feature.shape)} and target {tuple(target.shape)} must be (B,C,h,w) "
                         f"with the same batch and spatial size")
    B, C, h, w = feature.shape
    if hole.shape != (B, 1, h, w):
        raise ValueError(f"hole must be (B,1,h,w) = {(B, 1, h, w)}, got {tuple(hole.shape)}")
    feature = feature.float()  # (B,C,h,w) float32: squared relu4_3 values can overflow float16 under autocast
    target = match_channels(target.detach().float(), C)  # (B,C,h,w) constant Φ(I_gt)
    hole = hole.float()  # (B,1,h,w)
    if not over_hole:
        return F.mse_loss(hole * feature, target)
    squared = (feature - target) ** 2 * hole  # (B,C,h,w), zero outside M
    count = (hole.sum() * C).clamp_min(1.0)  # |M| · C, at least 1 so an empty hole gives 0, not NaN
    return squared.sum() / count


def perceptual_loss(fake: Mapping[str, Tensor], real: Mapping[str, Tensor],
                    taps: tuple[str, ...] = PERCEPTUAL_TAPS) -> Tensor:
    """Feature matching: L_perc = Σ_t mean |Φ_t(I_ip) - Φ_t(I_gt)| over the VGG16 taps t -> scalar.

    Not in the CSA paper: the perceptual loss of Johnson et al. (2016) as the partial-convolution and
    LaMa inpainting recipes use it, an optional term (`Config.lambda_perceptual`, 0 = off). The real
    features are constants (detached).
    """
    return sum(torch.mean(torch.abs(fake[t].float() - real[t].detach().float())) for t in taps)


def gram_matrix(feature: Tensor) -> Tensor:
    """G = F Fᵀ / (C·h·w) for feature F (B,C,h,w) flattened to (B,C,h·w) -> (B,C,C), in float32."""
    B, C, h, w = feature.shape
    flat = feature.float().reshape(B, C, h * w)  # (B,C,h*w)
    return flat @ flat.transpose(1, 2) / (C * h * w)  # (B,C,C)


def style_loss(fake: Mapping[str, Tensor], real: Mapping[str, Tensor],
               taps: tuple[str, ...] = PERCEPTUAL_TAPS) -> Tensor:
    """Style term: L_style = Σ_t mean |G(Φ_t(I_ip)) - G(Φ_t(I_gt))| over the VGG16 taps t -> scalar.

    Gatys et al.'s Gram matrices, as the partial-convolution recipe uses them for texture
    (`Config.lambda_style`, 0 = off; not in the CSA paper).
    """
    return sum(torch.mean(torch.abs(gram_matrix(fake[t]) - gram_matrix(real[t].detach()))) for t in taps)


# --------------------------------------------------------------------------------------------
# Full generator / discriminator objectives
# --------------------------------------------------------------------------------------------
def objective_terms(cfg: "Config") -> list[dict]:
    """The generator objective term by term, as `generator_losses` weights it for `cfg`: one dict per term
    with "term" (its key), "paper" (the paper's symbol), "compares", "weight" (the code's λ), "paper_weight"
    (λ / PAPER_SCALE, the paper's way of writing it) and "active" (False: reported as 0, e.g. without VGG)."""
    rows = [
        ("l1_coarse", "L_rec, coarse", "coarse output vs truth: mean absolute error, whole image", cfg.lambda_l1, True),
        ("l1_refined", "L_rec, refined", "refined output vs truth: mean absolute error, whole image", cfg.lambda_l1, True),
        ("adv_image", "L_adv, image patch D", "RaLSGAN: the refined image against real photos", cfg.lambda_adv, True),
        ("adv_feature", "L_adv, feature patch D", "RaLSGAN: VGG16 pool3 of the refined image against real",
         cfg.lambda_adv, cfg.use_vgg),
        ("consistency_csa", "L_c, CSA output", "CSA output vs VGG16 relu4_3 of the truth, hole cells",
         cfg.lambda_consistency, cfg.use_vgg),
        ("consistency_decoder", "L_c, decoder", "decoder feature at 1/8 vs VGG16 relu4_3 of the truth, hole cells",
         cfg.lambda_consistency, cfg.use_vgg),
        ("perceptual", "L_perc (not the paper's)", "VGG16 pool1-3 of the refined output vs the truth: mean |difference|",
         cfg.lambda_perceptual, cfg.use_vgg),
        ("style", "L_style (not the paper's)", "Gram matrices of those VGG16 features: mean |difference|",
         cfg.lambda_style, cfg.use_vgg),
    ]
    return [{"term": term, "paper": paper, "compares": compares, "weight": weight,
             "paper_weight": weight / PAPER_SCALE, "active": active} for term, paper, compares, weight, active in rows]


# --------------------------------------------------------------------------------------------
class LossNetworks(NamedTuple):
    """The networks the losses run images through: both discriminators and VGG16 (None = VGG-free).

    Pass whichever wrappers the step needs (DistributedDataParallel for the discriminator step, the
    plain modules for the generator step).
    """

    patch_disc: nn.Module
    feature_disc: nn.Module
    vgg: nn.Module | None = None


def generator_losses(batch: Mapping[str, Tensor], out: "GeneratorOutput", nets: LossNetworks, cfg: "Config",
                     real_features: dict[str, Tensor] | None = None,
                     fake_features: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Every generator-side term and their weighted "total" (scalars) for batch {"image", "mask"}.

    `batch["image"]` (B,3,H,W) in [-1,1] is the truth, `batch["mask"]` (B,1,H,W) the hole (read only
    when `cfg.l1_hole_weight` != 1, where the L1 terms weight hole pixels more), `out` the generator's
    forward on that batch. Terms: "l1_coarse", "l1_refined" (L_rec on the raw outputs, whole image),
    "adv_image" (L_adv of the image patch discriminator), "adv_feature" (L_adv of the feature patch
    discriminator on VGG pool3), "consistency_csa", "consistency_decoder" (L_c of the two taps against
    Φ(I_gt) = VGG relu4_3), "perceptual" and "style" (optional terms on VGG pool1-3, not the paper's;
    their weights are 0 by default), and

        total = λ_r (l1_coarse + l1_refined) + λ_adv (adv_image + adv_feature)
              + λ_c (consistency_csa + consistency_decoder) + λ_perc perceptual + λ_style style.

    Every term except "l1_coarse" backpropagates into the refinement net (and "l1_coarse" into the
    coarse net). Real-image quantities carry no generator dependence and are computed without a graph.
    `real_features` may pass `nets.vgg(image)` when the caller already has it, and `fake_features`
    `nets.vgg(out.refined, upto="pool3")` computed WITH its graph (the trainer shares one VGG pass of the
    output between the discriminator and the generator step). `nets.vgg=None`
    (Config.use_vgg False) turns the VGG-based terms off: they are reported as 0.
    """
    image, hole = batch["image"], batch.get("mask")  # (B,3,H,W), (B,1,H,W)
    patch_disc, feature_disc, vgg = nets
    refined = out.refined  # (B,3,H,W) raw refinement output, as the original feeds the discriminators
    with torch.no_grad():
        if real_features is None and vgg is not None:
            real_features = vgg(image)  # pool3 (B,256,H/8,W/8), relu4_3 (B,512,H/8,W/8)
        real_patch = patch_disc(image)  # (B,1,h,w)
    terms = {
        "l1_coarse": reconstruction_loss(out.coarse, image, hole, cfg.l1_hole_weight),
        "l1_refined": reconstruction_loss(refined, image, hole, cfg.l1_hole_weight),
        "adv_image": ralsgan_g_loss(real_patch, patch_disc(refined)),
    }
    if vgg is None:  # VGG-free training (cfg.use_vgg False): the VGG-based terms are off
        zero = refined.new_zeros((), dtype=torch.float32)
        terms.update(adv_feature=zero, consistency_csa=zero, consistency_decoder=zero, perceptual=zero, style=zero)
    else:
        with torch.no_grad():
            real_feature_logits = feature_disc(real_features["pool3"])  # (B,8*ndf,h',w')
        if fake_features is None:  # with graph: the generator gets the feature-adversarial gradient;
            fake_features = vgg(refined, upto="pool3")  # relu4_3 of the output is not needed
        target = real_features["relu4_3"]  # (B,512,H/8,W/8) Φ(I_gt)
        terms["adv_feature"] = ralsgan_g_loss(real_feature_logits, feature_disc(fake_features["pool3"]))
        terms["consistency_csa"] = consistency_loss(out.csa_feature, target, out.feature_hole,
                                                    cfg.consistency_over_hole)
        terms["consistency_decoder"] = consistency_loss(out.decoder_feature, target, out.feature_hole,
                                                        cfg.consistency_over_hole)
        terms["perceptual"] = perceptual_loss(fake_features, real_features)
        terms["style"] = style_loss(fake_features, real_features)
    terms["total"] = (cfg.lambda_l1 * (terms["l1_coarse"] + terms["l1_refined"])
                      + cfg.lambda_adv * (terms["adv_image"] + terms["adv_feature"])
                      + cfg.lambda_consistency * (terms["consistency_csa"] + terms["consistency_decoder"])
                      + cfg.lambda_perceptual * terms["perceptual"] + cfg.lambda_style * terms["style"])
    return terms


def discriminator_losses(batch: Mapping[str, Tensor], out: "GeneratorOutput", nets: LossNetworks,
                         real_features: dict[str, Tensor] | None = None,
                         fake_features: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Discriminator terms for batch {"image": (B,3,H,W), ...}: "d_image", "d_feature", "total" = ½ (sum).

    Both see the ground truth as real and the detached raw refined output as fake, the feature
    discriminator through VGG pool3 (no gradient reaches the generator; `fake_features` may pass the VGG
    taps of `out.refined`, with or without a graph: they are detached here); `nets.vgg=None` leaves it
    out (d_feature = 0).
    """
    image = batch["image"]  # (B,3,H,W)
    patch_disc, feature_disc, vgg = nets
    fake = out.refined.detach()  # (B,3,H,W)
    terms = {"d_image": ralsgan_d_loss(patch_disc(image), patch_disc(fake))}
    if vgg is None:  # VGG-free training: the feature discriminator is not trained
        terms["d_feature"] = terms["d_image"].new_zeros((), dtype=torch.float32)
    else:
        with torch.no_grad():
            if real_features is None:
                real_features = vgg(image)
            real_pool3 = real_features["pool3"]  # (B,256,H/8,W/8)
            if fake_features is None:
                fake_pool3 = vgg(fake, upto="pool3")["pool3"]  # (B,256,H/8,W/8)
            else:
                fake_pool3 = fake_features["pool3"].detach()  # the same values: VGG is frozen
        terms["d_feature"] = ralsgan_d_loss(feature_disc(real_pool3), feature_disc(fake_pool3))
    terms["total"] = 0.5 * (terms["d_image"] + terms["d_feature"])
    return terms
