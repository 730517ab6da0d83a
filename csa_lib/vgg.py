"""Frozen torchvision VGG16 feature slices for the feature-patch discriminator and the consistency loss.

The original cuts `vgg16().features` into four slices (`docs/csa_spec.md` §5):
`[0:5]` -> "pool1" (64 @ H/2), `[5:10]` -> "pool2" (128 @ H/4), `[10:17]` -> "pool3" (256 @ H/8) and
`[17:23]` -> "relu4_3" (512 @ H/8). The original named the first three `relu1_2`, `relu2_2`, `relu3_3`,
but they are taken after the max-pools; we name them by what they are.

One fix: the original fed [-1, 1] images to VGG without ImageNet normalisation. We map images to
[0, 1] and apply the ImageNet mean/std inside (`normalize=False` restores the original behaviour).

Weights: "imagenet" = torchvision's `VGG16_Weights.IMAGENET1K_V1`, taken from the torch hub cache
when the file is there, else downloaded once; a path = a local state dict (a full torchvision vgg16
state dict or its `features` part); None = random weights (tests and offline smoke runs only).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (name, end index into `vgg16().features`): each slice starts where the previous one ended.
SLICES: tuple[tuple[str, int], ...] = (("pool1", 5), ("pool2", 10), ("pool3", 17), ("relu4_3", 23))
N_LAYERS = SLICES[-1][1]  # only features[0:23] are kept
_TAP_AT = {end: name for name, end in SLICES}

IMAGENET_WEIGHTS = torchvision.models.VGG16_Weights.IMAGENET1K_V1


def imagenet_weights_path() -> Path:
    """Where torch hub keeps (or would keep) the ImageNet VGG16 file: `<hub dir>/checkpoints/<name>`."""
    filename = os.path.basename(urlparse(IMAGENET_WEIGHTS.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


class VGGWeightsUnavailable(RuntimeError):
    """The ImageNet VGG16 weights are neither in the torch hub cache nor downloadable (offline)."""


def _offline_message(error: BaseException) -> str:
    url, target = IMAGENET_WEIGHTS.url, imagenet_weights_path()
    return (
        f"Could not get the ImageNet VGG16 weights ({type(error).__name__}: {error}).\n"
        f"  - Download {url} on a machine with internet access and copy it to {target} "
        f"(the torch hub checkpoints folder; set TORCH_HOME to move it), then run again; or\n"
        f"  - pass vgg_weights='/path/to/vgg16.pth' (a local torchvision VGG16 state dict); or\n"
        f"  - pass vgg_weights=None for random VGG features (tests and offline smoke runs only: the "
        f"consistency and feature-adversarial losses are then meaningless)."
    )


def _load_imagenet_state_dict() -> dict[str, Tensor]:
    """The ImageNet VGG16 state dict: from the hub cache if present, else downloaded (helpful error offline)."""
    cached = imagenet_weights_path()
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    try:
        return torch.hub.load_state_dict_from_url(IMAGENET_WEIGHTS.url, map_location="cpu",
                                                  progress=True, check_hash=True)
    except (OSError, RuntimeError) as error:  # URLError/HTTPError/timeouts are OSErrors; bad hash = RuntimeError
        raise VGGWeightsUnavailable(_offline_message(error)) from error


def _features_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Keep the `features[0:23]` entries of a full or features-only VGG16 state dict, keyed like ours."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    kept: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("features.")
        index = key.split(".", 1)[0]
        if index.isdigit() and int(index) < N_LAYERS:
            kept[key] = value
    return kept


class VGG16Features(nn.Module):
    """Frozen VGG16 slices: image (B,3,H,W) in [-1,1] -> {"pool1": (B,64,H/2,W/2), "pool2": (B,128,H/4,W/4),
    "pool3": (B,256,H/8,W/8), "relu4_3": (B,512,H/8,W/8)}.

    Args:
        weights: "imagenet", a path to a VGG16 state dict (full or `features` only), or None (random).
        normalize: map [-1,1] to [0,1] and apply the ImageNet mean/std (False = the original's raw input).

    The parameters never train (requires_grad False, always in eval mode), but gradients do flow to
    the input: the generator's adversarial-feature and consistency losses backpropagate through it.
    """

    def __init__(self, weights: str | os.PathLike | None = "imagenet", normalize: bool = True):
        super().__init__()
        self.normalize = normalize
        with torch.device("meta"):  # build the layer list without allocating the 100M-parameter classifier
            full = torchvision.models.vgg16(weights=None)
        self.features = full.features[:N_LAYERS]
        self.features.to_empty(device="cpu")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.weights_source = self._load(weights)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def _load(self, weights: str | os.PathLike | None) -> str:
        """Fill the parameters; returns a short description of where they came from."""
        if weights is None:
            self._random_init()
            warnings.warn("VGG16Features(weights=None): VGG16 has RANDOM weights, so the consistency and "
                          "feature-adversarial losses are meaningless (fine for tests and offline smoke runs).",
                          UserWarning, stacklevel=3)
            return "random"
        if isinstance(weights, str) and weights.lower() == "imagenet":
            state, source = _load_imagenet_state_dict(), "imagenet"
        else:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"VGG16 weights file not found: {str(path)!r}. Pass vgg_weights='imagenet', "
                                        f"a path to a VGG16 state dict, or None for random weights.")
            state, source = torch.load(path, map_location="cpu", weights_only=True), str(path)
        kept = _features_state_dict(state)
        missing = sorted(set(self.features.state_dict()) - set(kept), key=lambda k: (int(k.split(".")[0]), k))
        if missing:
            raise ValueError(f"{source}: not a VGG16 state dict; missing features keys {missing} "
                             f"(expected 'features.<i>.weight'/'.bias' as torchvision saves them, or '<i>.weight').")
        self.features.load_state_dict(kept, strict=True)
        return source

    def _random_init(self) -> None:
        """torchvision's VGG init: conv weights Kaiming-normal (fan_out, ReLU), biases 0."""
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def train(self, mode: bool = True) -> "VGG16Features":
        """Always stays in eval mode (frozen feature extractor)."""
        return super().train(False)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        """image (B,3,H,W) in [-1,1] -> dict of pool1, pool2, pool3, relu4_3 feature maps."""
        x = image
        if self.normalize:
            x = ((image + 1) / 2 - self.mean.to(image.dtype)) / self.std.to(image.dtype)  # (B,3,H,W)
        out: dict[str, Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)  # (B,C_i,H_i,W_i)
            if i + 1 in _TAP_AT:
                out[_TAP_AT[i + 1]] = x
        return out
