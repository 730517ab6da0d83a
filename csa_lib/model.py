"""The CSA generator (coarse U-Net + refinement U-Net with the CSA layer) and both discriminators.

Layer by layer as the original code builds them (`docs/csa_spec.md` §1-§3, §6), with channel
counts scaled by `ngf` / `ndf` and the U-Net depth by `image_size` (8 levels at 256 px, the
original; log2(image_size) levels in general, so small smoke models work too). Module names are
our own; `csa_lib.engine.official_layout` maps them to and from the original checkpoint layout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import holes
from .csa_layer import CSAAttention, CSALayer, feature_hole_mask

CSA_LEVEL = 3  # the CSA layer works at image_size / 2**3 (32x32 for 256 px)

# Coarse-input hole fill (spec §1): the constants 123, 104, 117 mapped to [-1, 1], per channel R, G, B.
# They are the ImageNet mean pixel rounded, with G and B swapped, exactly as the original code has them.
HOLE_FILL = (2 * 123 / 255 - 1, 2 * 104 / 255 - 1, 2 * 117 / 255 - 1)


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


def depth_for(image_size: int) -> int:
    """Number of U-Net down-sampling levels for a square training size (8 at 256 px)."""
    depth = int(round(math.log2(image_size)))
    if 2 ** depth != image_size or depth < 4:
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return depth


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The original init: conv and transposed-conv weights ~ N(0, std), biases 0; norms untouched."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------------------------
# Coarse network: pix2pix U-Net (`unet_256` at depth 8)
# --------------------------------------------------------------------------------------------
class _CoarseLevel(nn.Module):
    """One pix2pix U-Net level: a k4 s2 conv down and a k4 s2 transposed conv up."""

    def __init__(self, outer: int, inner: int, up_in: int, up_out: int, outermost: bool, innermost: bool):
        super().__init__()
        self.down = nn.Conv2d(outer, inner, 4, 2, 1)
        self.down_norm = None if (outermost or innermost) else _norm(inner)
        self.up = nn.ConvTranspose2d(up_in, up_out, 4, 2, 1)
        self.up_norm = None if outermost else _norm(up_out)


class CoarseNet(nn.Module):
    """Coarse network: (B,3,H,W) hole-filled image -> (B,3,H,W) rough fill in [-1, 1] (Tanh)."""

    def __init__(self, ngf: int = 64, depth: int = 8, in_channels: int = 3, out_channels: int = 3):
        super().__init__()
        self.ngf, self.depth = ngf, depth
        width = [ngf * min(2 ** k, 8) for k in range(depth)]  # channels after level k's down conv
        levels = [_CoarseLevel(in_channels, width[0], 2 * width[0], out_channels, outermost=True, innermost=False)]
        for k in range(1, depth):
            innermost = k == depth - 1
            up_in = width[k] if innermost else 2 * width[k]
            levels.append(_CoarseLevel(width[k - 1], width[k], up_in, width[k - 1], False, innermost))
        self.levels = nn.ModuleList(levels)

    def forward(self, x: Tensor) -> Tensor:
        """(B,3,H,W) -> (B,3,H,W)."""
        outer, *middle, inner = self.levels
        h = outer.down(x)  # (B,ngf,H/2,W/2)
        skips = []
        for level in middle:
            skips.append(h)
            h = level.down_norm(level.down(_lrelu(h)))  # (B,c,H/2^k,W/2^k)
        skips.append(h)
        h = inner.up_norm(inner.up(F.relu(inner.down(_lrelu(h)))))  # innermost: down, up
        for level in reversed(middle):
            h = torch.cat([h, skips.pop()], dim=1)  # each level returns cat([decoded, its input])
            h = level.up_norm(level.up(F.relu(h)))
        h = torch.cat([h, skips.pop()], dim=1)  # (B,2*ngf,H/2,W/2)
        return torch.tanh(outer.up(F.relu(h)))  # (B,3,H,W)


# --------------------------------------------------------------------------------------------
# Refinement network: U-Net with dilated down-sampling and the CSA layer (`unet_csa` at depth 8)
# --------------------------------------------------------------------------------------------
class DilatedDown(nn.Conv2d):
    """The refinement net's down conv, ``Conv2d(c, c, 4, stride=2, padding=3, dilation=2)``, computed faster.

    Output pixel i reads input rows 2i - 3 + 2k (k = 0..3): all odd. So the layer is a plain 4x4 conv,
    stride 1, over the odd rows and columns of its input, padded by 2 before and 1 or 2 after: the
    same sums with the same weights (outputs equal to the dilated conv's), without the dilated
    kernels PyTorch runs slowly on the CPU (2.6x slower forward + backward at 128 px). Parameters
    and state-dict keys are the Conv2d's.
    """

    def __init__(self, channels: int):
        super().__init__(channels, channels, 4, 2, 3, dilation=2)

    def forward(self, x: Tensor) -> Tensor:
        """(B,C,H,W) -> (B,C,ceil(H/2),ceil(W/2))."""
        H, W = x.shape[-2:]
        odd = x[..., 1::2, 1::2]  # (B,C,floor(H/2),floor(W/2)): the only pixels the dilated kernel reads
        out_h, out_w = (H + 1) // 2, (W + 1) // 2
        odd = F.pad(odd, (2, out_w + 1 - odd.shape[-1], 2, out_h + 1 - odd.shape[-2]))
        return F.conv2d(odd, self.weight, self.bias)


class _RefineLevel(nn.Module):
    """One refinement U-Net level: dilated k4 s2 down conv, 3x3 widening conv; mirror on the way up."""

    def __init__(self, c_in: int, c_out: int, innermost: bool):
        super().__init__()
        self.down = DilatedDown(c_in)  # effective 7x7, halves the size
        if innermost:
            self.down_norm = self.widen = self.widen_norm = self.narrow = self.narrow_norm = None
        else:
            self.down_norm = _norm(c_in)
            self.widen = nn.Conv2d(c_in, c_out, 3, 1, 1)
            self.widen_norm = _norm(c_out)
            self.narrow = nn.ConvTranspose2d(2 * c_out, c_in, 3, 1, 1)
            self.narrow_norm = _norm(c_in)
        self.up = nn.ConvTranspose2d(c_in, c_in, 4, 2, 1)
        self.up_norm = _norm(c_in)


class RefineNet(nn.Module):
    """Refinement network: (B,6,H,W) [composite, zero-filled image] -> (B,3,H,W), linear output (no Tanh)."""

    def __init__(self, ngf: int = 64, depth: int = 8, in_channels: int = 6, out_channels: int = 3):
        super().__init__()
        if depth < CSA_LEVEL + 1:
            raise ValueError(f"the refinement net needs depth >= {CSA_LEVEL + 1}, got {depth}")
        self.ngf, self.depth = ngf, depth
        self.in_conv = nn.Conv2d(in_channels, ngf, 3, 1, 1)
        c = [ngf * min(2 ** (i - 1), 8) for i in range(depth + 2)]  # c[i] = input channels of level i
        self.levels = nn.ModuleList(
            [_RefineLevel(c[i], c[i + 1], innermost=(i == depth)) for i in range(1, depth + 1)])
        self.out_conv = nn.ConvTranspose2d(2 * ngf, out_channels, 3, 1, 1)
        self.csa = CSALayer()

    def forward(self, x: Tensor, feature_hole: Tensor, return_attention: bool = False
                ) -> tuple[Tensor, Tensor, Tensor, CSAAttention | None]:
        """x (B,6,H,W), feature_hole (B,1,H/8,W/8) bool -> (refined (B,3,H,W), csa_feature, decoder_feature,
        attention): the CSA layer's CSAAttention with `return_attention`, else None."""
        *middle, inner = self.levels
        h = self.in_conv(x)  # (B,ngf,H,W)
        skips = []
        csa_feature = decoder_feature = attention = None
        for i, level in enumerate(middle, start=1):
            skips.append(h)
            h = level.widen(_lrelu(level.down_norm(level.down(_lrelu(h)))))  # (B,c_out,H/2^i,W/2^i)
            if i == CSA_LEVEL:
                if return_attention:
                    h, attention = self.csa(h, feature_hole, return_attention=True)
                else:
                    h = self.csa(h, feature_hole)
                csa_feature = h  # CSA before this level's norm; tap 1
            h = level.widen_norm(h)
        skips.append(h)
        h = inner.up_norm(inner.up(F.relu(inner.down(_lrelu(h)))))
        for i in range(len(middle), 0, -1):  # levels depth-1 .. 1
            h = _cat_skip(h, skips.pop())
            if i == CSA_LEVEL:
                decoder_feature = h[:, : csa_feature.shape[1]]  # tap 2: decoded feature of the level below
            level = middle[i - 1]
            h = level.narrow_norm(level.narrow(F.relu(h)))
            h = level.up_norm(level.up(F.relu(h)))
        h = _cat_skip(h, skips.pop())  # (B,2*ngf,H,W)
        return self.out_conv(F.relu(h)), csa_feature, decoder_feature, attention


def _cat_skip(decoded: Tensor, skip: Tensor) -> Tensor:
    """cat([decoded, skip]) on channels; resize `decoded` bilinearly if sizes differ (as the original)."""
    if decoded.shape[-2:] != skip.shape[-2:]:
        decoded = F.interpolate(decoded, size=skip.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([decoded, skip], dim=1)


# --------------------------------------------------------------------------------------------
# The full generator
# --------------------------------------------------------------------------------------------
@dataclass
class GeneratorOutput:
    """Everything one generator forward produces."""

    coarse: Tensor            # (B,3,H,W) coarse net output
    refined: Tensor           # (B,3,H,W) raw refinement output (unbounded, as the original)
    composite: Tensor         # (B,3,H,W) refined inside the hole, the input image outside
    csa_feature: Tensor       # (B,8*ngf,H/8,W/8) CSA layer output (consistency tap 1)
    decoder_feature: Tensor   # (B,8*ngf,H/8,W/8) decoder feature at the CSA level (consistency tap 2)
    feature_hole: Tensor      # (B,1,H/8,W/8) float {0,1}, hole cells at the CSA level
    attention: CSAAttention | None = None


class CSAGenerator(nn.Module):
    """Coarse net + refinement net with CSA: (image, mask) -> GeneratorOutput.

    `detach_coarse` (default True, like the original): the refinement input is built from the coarse
    output with its gradient cut, so the coarse net learns only from its own L1 term. We keep it
    because it is the behaviour the released model was trained with, it keeps the coarse stage a
    plain reconstruction net that the adversarial and consistency terms cannot destabilise, and it
    saves the backward pass through the coarse net for every refinement loss. Set it False to train
    both stages end to end.
    """

    def __init__(self, ngf: int = 64, image_size: int = 256, detach_coarse: bool = True, depth: int | None = None):
        super().__init__()
        self.ngf, self.image_size, self.detach_coarse = ngf, image_size, detach_coarse
        full = depth_for(image_size)
        if depth is not None and not 4 <= depth <= full:
            raise ValueError(f"depth must be between 4 and log2(image_size) = {full}, got {depth}")
        self.depth = full if depth is None else depth
        self.coarse_net = CoarseNet(ngf, self.depth)
        self.refine_net = RefineNet(ngf, self.depth)
        self.register_buffer("hole_fill", torch.tensor(HOLE_FILL).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: Tensor, mask: Tensor, return_attention: bool = False) -> GeneratorOutput:
        """image (B,3,H,W) in [-1,1], mask (B,1,H,W) with 1 = hole -> GeneratorOutput."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        B, _, H, W = image.shape
        if mask.shape != (B, 1, H, W):
            raise ValueError(f"mask must be (B, 1, H, W) = {(B, 1, H, W)} to match the image, got {tuple(mask.shape)}")
        step = 2 ** self.depth
        if H % step or W % step:
            raise ValueError(f"this model (depth {self.depth}) needs H and W to be multiples of {step}, "
                             f"got {H}x{W}; resize or pad the image (csa_lib.inference does this for you)")
        hole = mask > 0.5  # (B,1,H,W) bool
        fill = self.hole_fill.to(image.dtype)
        coarse_in = torch.where(hole, fill, image)  # (B,3,H,W) hole -> mean colour
        coarse = self.coarse_net(coarse_in)  # (B,3,H,W)
        rough = coarse.detach() if self.detach_coarse else coarse
        composite_coarse = holes.composite(rough, image, hole)  # (B,3,H,W)
        known = torch.where(hole, torch.zeros_like(image), image)  # (B,3,H,W) zero-filled hole
        feature_hole = feature_hole_mask(mask)  # (B,1,H/8,W/8) bool
        refined, csa_feature, decoder_feature, attention = self.refine_net(
            torch.cat([composite_coarse, known], dim=1), feature_hole, return_attention)  # (B,3,H,W)
        composite = holes.composite(refined, image, hole)  # (B,3,H,W)
        return GeneratorOutput(coarse, refined, composite, csa_feature, decoder_feature,
                               feature_hole.to(image.dtype), attention)


# --------------------------------------------------------------------------------------------
# Discriminators (spec §6)
# --------------------------------------------------------------------------------------------
class PatchDiscriminator(nn.Module):
    """Image patch discriminator (PatchGAN, 3 layers): (B,3,H,W) -> (B,1,H/8-2,W/8-2) logits."""

    def __init__(self, ndf: int = 64, in_channels: int = 3):
        super().__init__()
        lrelu = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 4, 2, 1), lrelu(),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1), _norm(ndf * 2), lrelu(),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1), _norm(ndf * 4), lrelu(),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 1, 1), _norm(ndf * 8), lrelu(),
            nn.Conv2d(ndf * 8, 1, 4, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B,3,H,W) -> (B,1,h,w)."""
        return self.layers(x)


class FeatureDiscriminator(nn.Module):
    """Feature patch discriminator on VGG16 pool3 features: (B,256,h,w) -> (B,8*ndf,h/8,w/8) logits.

    The original fixes its width at 512 (= 8 * 64) whatever `ndf` is; we scale it as 8 * ndf, which is
    the same at the default ndf = 64 and lets toy models stay small.
    """

    def __init__(self, ndf: int = 64, in_channels: int = 256):
        super().__init__()
        width = 8 * ndf
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 4, 2, 1), nn.InstanceNorm2d(width, affine=False), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 4, 2, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B,256,h,w) -> (B,8*ndf,h/8,w/8)."""
        return self.layers(x)


def build_models(cfg) -> tuple[CSAGenerator, PatchDiscriminator, FeatureDiscriminator]:
    """Generator and both discriminators for a Config, initialised N(0, 0.02) like the original."""
    generator = CSAGenerator(cfg.ngf, cfg.image_size, cfg.detach_coarse, cfg.unet_depth)
    patch_disc, feature_disc = PatchDiscriminator(cfg.ndf), FeatureDiscriminator(cfg.ndf)
    for net in (generator, patch_disc, feature_disc):
        init_weights(net)
    return generator, patch_disc, feature_disc
