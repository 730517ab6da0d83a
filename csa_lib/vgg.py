"""Frozen VGG16 feature slices for the feature-patch discriminator and the consistency loss.

The original cuts `vgg16().features` into four slices (`docs/csa_spec.md` §5):
`[0:5]` -> "pool1" (64 @ H/2), `[5:10]` -> "pool2" (128 @ H/4), `[10:17]` -> "pool3" (256 @ H/8) and
`[17:23]` -> "relu4_3" (512 @ H/8). The original named the first three `relu1_2`, `relu2_2`, `relu3_3`,
but they are taken after the max-pools; we name them by what they are.

One fix: the original fed [-1, 1] images to VGG without ImageNet normalisation. We map images to
[0, 1] and apply the ImageNet mean/std inside (`normalize=False` restores the original behaviour).

Weights:
* "imagenet" = torchvision's `VGG16_Weights.IMAGENET1K_V1`, taken from the torch hub cache when the
  file is there, else downloaded once;
* "stlpips" = the trained VGG16 that ships inside the `stlpips-pytorch` wheel
  (`vgg_shift_tolerant.pth`, the backbone of the shift-tolerant LPIPS metric; no download). Its
  network is VGG16 made shift-tolerant (Zhang, "Making convolutional networks shift-invariant
  again", 2019): every 2x2 max-pool runs at stride 1 and is followed by a blur-pool (reflect-pad 2,
  a depthwise 3x3 binomial filter, stride 2), so its `features` indices differ from torchvision's.
  The blur filters are buffers of that file and are loaded with it. Its blur-pools pad by 2, so
  each of its maps has one extra leading row and column (H/2+1 for H); the taps drop them, which
  leaves maps of torchvision's sizes whose cells sit within one input pixel of torchvision's grid
  (at pool3 and relu4_3 cell j is centred at 8j+4.5 instead of 8j+3.5). Same taps, same sizes;
* a path = a local state dict: a full torchvision vgg16 state dict, its `features` part, or the
  stlpips file (recognised by its `net.slice*` keys);
* None = random weights (tests and offline smoke runs only).
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TAPS = ("pool1", "pool2", "pool3", "relu4_3")

# (name, end index into the layer list): each slice starts where the previous one ended.
SLICES: tuple[tuple[str, int], ...] = (("pool1", 5), ("pool2", 10), ("pool3", 17), ("relu4_3", 23))
N_LAYERS = SLICES[-1][1]  # only torchvision's features[0:23] are kept
# The shift-tolerant layout: each max-pool is two layers (stride-1 max-pool, blur-pool).
SHIFT_TOLERANT_SLICES: tuple[tuple[str, int], ...] = (("pool1", 6), ("pool2", 12), ("pool3", 20), ("relu4_3", 26))
VGG16_CHANNELS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)  # up to relu4_3

IMAGENET_WEIGHTS = torchvision.models.VGG16_Weights.IMAGENET1K_V1
STLPIPS_PACKAGE = "stlpips_pytorch"
STLPIPS_VGG_FILE = ("weights", "vST0.0", "vgg_shift_tolerant.pth")  # inside the package folder
_STLPIPS_PREFIX = "net.slice"  # the stlpips file's keys: net.slice<k>.<global index>.<weight|bias|filt>


def imagenet_weights_path() -> Path:
    """Where torch hub keeps (or would keep) the ImageNet VGG16 file: `<hub dir>/checkpoints/<name>`."""
    filename = os.path.basename(urlparse(IMAGENET_WEIGHTS.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def stlpips_vgg_path() -> Path:
    """The trained shift-tolerant VGG16 file inside the installed `stlpips-pytorch` package.

    The package is located, not imported (its top level imports `torchsummary`, which it does not
    declare, and prints on construction).
    """
    spec = importlib.util.find_spec(STLPIPS_PACKAGE)
    if spec is None or spec.origin is None:
        raise VGGWeightsUnavailable("vgg_weights='stlpips' needs the stlpips-pytorch package: "
                                    "pip install 'csa-inpainting[eval]' (or pip install stlpips-pytorch==0.0.2)")
    path = Path(spec.origin).parent.joinpath(*STLPIPS_VGG_FILE)
    if not path.is_file():
        raise VGGWeightsUnavailable(f"stlpips-pytorch is installed but {path} is missing: reinstall it "
                                    f"(pip install --force-reinstall stlpips-pytorch==0.0.2)")
    return path


class VGGWeightsUnavailable(RuntimeError):
    """The requested VGG16 weights cannot be had (ImageNet offline, stlpips-pytorch not installed)."""


def _offline_message(error: BaseException) -> str:
    url, target = IMAGENET_WEIGHTS.url, imagenet_weights_path()
    return (
        f"Could not get the ImageNet VGG16 weights ({type(error).__name__}: {error}).\n"
        f"  - Download {url} on a machine with internet access and copy it to {target} "
        f"(the torch hub checkpoints folder; set TORCH_HOME to move it), then run again; or\n"
        f"  - pass vgg_weights='stlpips' (the trained VGG16 inside the stlpips-pytorch wheel, offline); or\n"
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


def is_shift_tolerant_state(state: dict[str, Tensor]) -> bool:
    """True for the stlpips layout (keys `net.slice<k>.<i>.*`)."""
    return any(key.startswith(_STLPIPS_PREFIX) for key in state)


def _features_state_dict(state: dict[str, Tensor], n_layers: int) -> dict[str, Tensor]:
    """Keep the entries of layers [0, n_layers) of a VGG16 state dict, keyed `<i>.<name>` like ours.

    Accepts torchvision's full (`features.<i>.*`) or features-only (`<i>.*`) layout, a DataParallel
    `module.` prefix, a `{"state_dict": ...}` wrapper, and the stlpips layout (`net.slice<k>.<i>.*`,
    whose indices are global, so dropping the slice prefix gives ours; `lin*` heads and the
    scaling layer are not VGG layers and are left out).
    """
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    kept: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("features.")
        if key.startswith(_STLPIPS_PREFIX):
            key = key.split(".", 2)[2]  # net.slice3.12.weight -> 12.weight
        index = key.split(".", 1)[0]
        if index.isdigit() and int(index) < n_layers:
            kept[key] = value
    return kept


class BlurPool(nn.Module):
    """Anti-aliased stride-2 downsampling: reflect-pad 2 on every side, depthwise 3x3 filter, stride 2.

    (B,C,H,W) -> (B,C,⌊H/2⌋+1,⌊W/2⌋+1); after the stride-1 2x2 max-pool before it (H-1) that is H/2
    for even H. The filter is the normalised binomial [1,2,1]ᵀ[1,2,1]/16 until a state dict replaces
    it (`filt`, (C,1,3,3), as the stlpips file stores it).
    """

    def __init__(self, channels: int):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16.0  # (3,3), sums to 1
        self.register_buffer("filt", kernel.expand(channels, 1, 3, 3).clone())

    def forward(self, x: Tensor) -> Tensor:
        padded = F.pad(x, (2, 2, 2, 2), mode="reflect")  # (B,C,H+4,W+4)
        return F.conv2d(padded, self.filt.to(x.dtype), stride=2, groups=x.shape[1])


def shift_tolerant_layers() -> nn.Sequential:
    """VGG16 up to relu4_3 with stride-1 max-pools and blur-pools: 26 layers, indexed as the stlpips file."""
    layers: list[nn.Module] = []
    channels = 3
    for v in VGG16_CHANNELS:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=1), BlurPool(channels)]
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers)


def torchvision_layers() -> nn.Sequential:
    """torchvision's `vgg16().features[0:23]` (up to relu4_3), allocated without the classifier."""
    with torch.device("meta"):  # build the layer list without allocating the 100M-parameter classifier
        full = torchvision.models.vgg16(weights=None)
    features = full.features[:N_LAYERS]
    features.to_empty(device="cpu")
    return features


class VGG16Features(nn.Module):
    """Frozen VGG16 slices: image (B,3,H,W) in [-1,1] -> {"pool1": (B,64,H/2,W/2), "pool2": (B,128,H/4,W/4),
    "pool3": (B,256,H/8,W/8), "relu4_3": (B,512,H/8,W/8)}.

    Args:
        weights: "imagenet", "stlpips", a path to a VGG16 state dict (torchvision full or `features`
            only, or the stlpips file), or None (random).
        normalize: map [-1,1] to [0,1] and apply the ImageNet mean/std (False = the original's raw input).
            The stlpips network was trained with the same normalisation (its scaling layer is the
            ImageNet mean/std written for [-1,1] inputs).

    The parameters never train (requires_grad False, always in eval mode), but gradients do flow to
    the input: the generator's adversarial-feature and consistency losses backpropagate through it.
    `shift_tolerant` says which network was built (True for the stlpips weights).
    """

    def __init__(self, weights: str | os.PathLike | None = "imagenet", normalize: bool = True):
        super().__init__()
        self.normalize = normalize
        state, self.weights_source = self._read(weights)
        self.shift_tolerant = state is not None and is_shift_tolerant_state(state)
        self.features = shift_tolerant_layers() if self.shift_tolerant else torchvision_layers()
        self._slices = SHIFT_TOLERANT_SLICES if self.shift_tolerant else SLICES
        self._tap_at = {end: name for name, end in self._slices}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if state is None:
            self._random_init()
        else:
            self._load_state(state)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    @staticmethod
    def _read(weights: str | os.PathLike | None) -> tuple[dict[str, Tensor] | None, str]:
        """The state dict the weights name (None for random) and a short description of its source."""
        if weights is None:
            warnings.warn("VGG16Features(weights=None): VGG16 has RANDOM weights, so the consistency and "
                          "feature-adversarial losses are meaningless (fine for tests and offline smoke runs).",
                          UserWarning, stacklevel=3)
            return None, "random"
        if isinstance(weights, str) and weights.lower() == "imagenet":
            return _load_imagenet_state_dict(), "imagenet"
        if isinstance(weights, str) and weights.lower() == "stlpips":
            path, source = stlpips_vgg_path(), "stlpips"
        else:
            path = Path(weights).expanduser()
            source = str(path)
            if not path.is_file():
                raise FileNotFoundError(f"VGG16 weights file not found: {str(path)!r}. Pass vgg_weights='imagenet', "
                                        f"'stlpips', a path to a VGG16 state dict, or None for random weights.")
        return torch.load(path, map_location="cpu", weights_only=True), source

    def _load_state(self, state: dict[str, Tensor]) -> None:
        """Load every layer's tensors strictly; a missing one is named."""
        kept = _features_state_dict(state, len(self.features))
        missing = sorted(set(self.features.state_dict()) - set(kept), key=lambda k: (int(k.split(".")[0]), k))
        if missing:
            raise ValueError(f"{self.weights_source}: not a VGG16 state dict; missing features keys {missing} "
                             f"(expected 'features.<i>.weight'/'.bias' as torchvision saves them, '<i>.weight', "
                             f"or the stlpips file's 'net.slice<k>.<i>.*').")
        self.features.load_state_dict(kept, strict=True)

    def _random_init(self) -> None:
        """torchvision's VGG init: conv weights Kaiming-normal (fan_out, ReLU), biases 0."""
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def train(self, mode: bool = True) -> "VGG16Features":
        """Always stays in eval mode (frozen feature extractor)."""
        return super().train(False)

    def forward(self, image: Tensor, upto: str = "relu4_3") -> dict[str, Tensor]:
        """image (B,3,H,W) in [-1,1] -> dict of the taps pool1, pool2, pool3, relu4_3, stopping after `upto`.

        `upto="pool3"` skips the relu4_3 block (a third of the cost) where only the feature
        discriminator's input and the shallower taps are needed.
        """
        if upto not in TAPS:
            raise ValueError(f"upto must be one of {TAPS}, got {upto!r}")
        x = image
        if self.normalize:
            x = ((image + 1) / 2 - self.mean.to(image.dtype)) / self.std.to(image.dtype)  # (B,3,H,W)
        out: dict[str, Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)  # (B,C_i,H_i,W_i)
            name = self._tap_at.get(i + 1)
            if name is not None:
                out[name] = x[..., 1:, 1:] if self.shift_tolerant else x  # (B,C,H/2^k,W/2^k)
                if name == upto:
                    break
        return out
