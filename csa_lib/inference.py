"""Public inference API: `load_model()` and `inpaint(model, image, mask)` on photos of any size.

How any size works: the photo is scaled so its longer side equals the model's training size
(`model.image_size`, 256 px for full models), reflect-padded to a square, inpainted, and the hole
is scaled back to the photo's own resolution; every known pixel of the input is pasted back
unchanged. The mask is scaled with "any coverage counts as hole", so thin strokes survive, and
only known pixels are averaged into the scaled photo: what lies under the hole never matters.

By default the fill is Poisson-blended into the photo at full resolution (`csa_lib.engine.blend`): its
gradients are kept and its colour is matched to the known pixels around the hole, so there is no
seam and no tint. Its own detail is kept only as far as the known pixels near each hole pixel are
as rough (`blend.detail_gain_map`, capped by the whole ring's `blend.detail_gain`), so a plain sky
gets a plain fill, not a painted spot or bowl; over texture nothing changes. `blend="poisson_full"`
skips that step; `blend="none"` pastes the network's output as it is (the paper's own output). Past the scaling of the photo for the network,
only the hole's bounding box is worked on, so a small hole in a big photo costs little more than in
a small one.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from . import holes, imageio
from .engine.blend import detail_gain, detail_gain_map, fill_offset, hole_box, poisson_blend
from .engine.checkpoint import read_torch_file
from .config import Config
from .imageio import ImageLike
from .model import CSAGenerator, init_weights
from .engine.official_layout import find_official_pair, load_official

DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "checkpoints" / "csa_demo.pt"
BLENDS = ("poisson", "poisson_full", "none")


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def generator_from_checkpoint(checkpoint: dict, source: str = "checkpoint") -> CSAGenerator:
    """A CSAGenerator from one of our checkpoint dicts (needs 'config' and 'generator')."""
    if not isinstance(checkpoint, dict) or "generator" not in checkpoint or "config" not in checkpoint:
        keys = list(checkpoint)[:6] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{source} is not a csa-inpainting checkpoint (needs 'config' and 'generator'; found {keys}). "
                         "For the original code's files pass the '<epoch>_net_G.pth' path instead")
    cfg = Config.from_dict(checkpoint["config"])
    model = CSAGenerator(cfg.ngf, cfg.image_size, cfg.detach_coarse, cfg.unet_depth)
    state = {k: v.float() for k, v in checkpoint["generator"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{source}: its generator weights do not fit a model with ngf={cfg.ngf}, "
                         f"image_size={cfg.image_size} (its own config): {error}") from error
    return model


def load_model(path: str | os.PathLike | None = None, device: str | torch.device | None = None) -> CSAGenerator:
    """Load a generator in eval mode: None = the shipped demo model; our checkpoints; the original layout.

    `path` may be our checkpoint file (`*.pt`), a run folder (its `last.pt`), or the original's
    `<epoch>_net_G.pth` (its `_net_P.pth` beside it) or a folder holding such a pair.
    """
    device = torch.device(device) if device is not None else default_device()
    path = Path(path) if path is not None else DEMO_CHECKPOINT
    if not path.exists():
        hint = (" The demo weights ship in data/checkpoints/ of the repository; run from a full clone "
                "or pass the path of your own checkpoint.") if path == DEMO_CHECKPOINT else ""
        raise FileNotFoundError(f"no checkpoint at {path}.{hint}")
    if path.is_dir():
        if any(path.glob("*_net_G.pth")):
            model = load_official(*find_official_pair(path))
        elif (path / "last.pt").is_file():
            model = generator_from_checkpoint(read_torch_file(path / "last.pt"), str(path / "last.pt"))
        else:
            raise FileNotFoundError(f"{path} holds neither 'last.pt' nor '<epoch>_net_G.pth'")
    elif path.name.endswith(("_net_G.pth", "_net_P.pth")):
        model = load_official(*find_official_pair(path.with_name(path.name.replace("_net_P", "_net_G"))))
    else:
        model = generator_from_checkpoint(read_torch_file(path), str(path))
    return model.to(device).eval()


def load_or_init(path: str | os.PathLike | None = None, fresh: Config | None = None,
                 device: str | torch.device | None = None) -> tuple[CSAGenerator, str]:
    """`load_model(path, device)`, or a fresh untrained generator when there are no weights; and which it is.

    Returns (model in eval mode, a phrase naming its source). When nothing is at `path` (None = the
    shipped demo weights) the model is a `CSAGenerator` of `fresh`'s size (default `Config()`),
    initialised N(0, 0.02) as the original, and the phrase says it is untrained. Weights that exist
    but cannot be read still raise: a broken file is never silently replaced by noise.
    """
    try:
        model = load_model(path, device)
    except FileNotFoundError as missing:
        cfg = fresh if fresh is not None else Config()
        model = CSAGenerator(cfg.ngf, cfg.image_size, cfg.detach_coarse, cfg.unet_depth)
        init_weights(model)  # N(0, 0.02), as the original
        device = torch.device(device) if device is not None else default_device()
        return model.to(device).eval(), f"a fresh UNTRAINED generator ({missing}): expect noise in the holes"
    return model, "the shipped demo model" if path is None else f"weights from {path}"


@torch.no_grad()
def inpaint(model: CSAGenerator, image: ImageLike, mask: ImageLike, blend: str = "poisson") -> Image.Image:
    """Fill the hole of `image` where `mask` says hole; returns a PIL RGB image of the input's size.

    `image` and `mask`: a path, encoded bytes, PIL image, array or tensor of the same size, read by
    `csa_lib.imageio` (EXIF orientation applied, 16/32-bit scaled, alpha composited on white; hole =
    at least half intensity: >= 128 for 8-bit, > 0.5 for floats; a mask's alpha when its colour is
    blank). Known pixels come back unchanged; an empty mask returns the image as it is, with a warning;
    a grey photo gets a grey fill; a hole over 75 % of the photo warns (an inverted mask?), and so does
    a mask that looks like a photo (`holes.looks_like_photo`: over 30 % of it grey, far from black
    and white). Runs on the model's
    device (CPU or CUDA). `blend`: "poisson" (default) blends the fill in without a seam and without
    the smooth colour shift of the fill from its own border (`blend.fill_offset`), keeping no more of
    its detail than the surroundings have; "poisson_full" blends all of it in; "none" pastes
    the raw output.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    pixels = imageio.read_image(image)  # (H,W,3) uint8
    plane = imageio.mask_plane(mask)  # its intensity, "L" or "F"
    hole = holes.hole_of(plane)  # (H,W) bool
    H, W = pixels.shape[:2]
    if hole.shape != (H, W):
        raise ValueError(f"mask is {hole.shape[1]}x{hole.shape[0]} (WxH) but the image is {W}x{H}; "
                         "resize the mask to the image's size")
    warn_at = 4  # the caller's line: warn_if_* -> inpaint -> torch.no_grad's wrapper -> caller
    holes.warn_if_photo(plane, stacklevel=warn_at)
    if not hole.any():
        holes.warn_if_no_hole(hole, stacklevel=warn_at)
        return Image.fromarray(pixels)
    if hole.all():
        raise ValueError("the mask covers the whole image: there is no known pixel to inpaint from")
    holes.warn_if_mostly_hole(hole, stacklevel=warn_at)

    device = next(model.parameters()).device
    size = model.image_size
    hole_t = torch.from_numpy(hole).to(device)  # (H,W) bool
    rows, cols = hole_box(hole_t)  # the hole's box plus the blend's margin: all that is written
    scale = size / max(H, W)
    h, w = max(1, round(H * scale)), max(1, round(W * scale))
    # Scale only the known pixels (a normalised average), so nothing under the hole reaches the model:
    # R, G, B and a known-weight channel (255 = known), zeroed under the hole, scaled down in one call.
    rgbk = np.empty((H, W, 4), np.uint8)
    rgbk[..., :3], rgbk[..., 3] = pixels, 255
    rgbk[rows, cols][hole[rows, cols]] = 0  # a view: only the box holds hole pixels
    # uint8 in, uint8 out (torch's fast path; a float copy of a big photo would cost more than the network).
    # Rounding to whole levels is harmless: the pixels whose windows touch the hole are hole or almost fully known.
    rgbk_t = torch.from_numpy(rgbk)[None].permute(0, 3, 1, 2)  # (1,4,H,W) uint8, channels last
    small = F.interpolate(rgbk_t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    small = small.to(device).float()  # (1,4,h,w) 0..255
    weight = small[:, 3:] / 255  # (1,1,h,w) share of known pixels under each small pixel
    x_small = ((small[:, :3] - 127.5 * weight) / (127.5 * weight.clamp_min(1e-6))).contiguous()  # (1,3,h,w); 0 where all is hole
    m_small = torch.from_numpy(any_coverage(hole, (h, w))).to(device)[None, None].float()  # (1,1,h,w) any coverage = hole
    if bool(m_small.all()):
        raise ValueError("at the model's resolution the mask covers the whole image: leave more pixels known")
    pad = (0, size - w, 0, size - h)  # left, right, top, bottom
    mode = "reflect" if (size - w) < w and (size - h) < h else "replicate"
    x_in = F.pad(x_small, pad, mode=mode)  # (1,3,size,size)
    m_in = F.pad(m_small, pad, value=0.0)  # padding counts as known
    out = model(x_in, m_in).refined[0, :, :h, :w]  # (3,h,w) the whole raw output, known part too
    gain = None
    if blend == "poisson":  # at the network's resolution: the fill's colour from the known pixels, and
        hole_small = m_small[0, 0] > 0  # no more of its detail than they have around it
        out = out - fill_offset(out, hole_small)  # the network's tint: the shift of its fill from its own border
        gain = detail_gain_map(out, x_small[0], hole_small).clamp(max=detail_gain(out, x_small[0], hole_small))
    # From here on only the hole's box is touched, so the cost follows the hole.
    fill = upscale_window(out, (H, W), rows, cols)  # (3,bh,bw) = the bicubic upscale of `out`, cropped
    if blend in ("poisson", "poisson_full"):  # the known pixels around the hole set its colour, the fill its gradients
        box = torch.from_numpy(pixels[rows, cols]).to(device).permute(2, 0, 1).float().div(127.5).sub(1)  # (3,bh,bw)
        if gain is not None:
            gain = upscale_window(gain[None], (H, W), rows, cols)[0].clamp(0, 1)  # (bh,bw)
        fill = poisson_blend(fill, box, hole_t[rows, cols], tol=1e-3, gain=gain)
    if imageio.is_grey(pixels):  # grey in, grey fill out: the network's fill has a tint of its own
        fill = fill.mean(dim=0, keepdim=True).expand_as(fill)  # (3,bh,bw)
    filled = pixels.copy()
    filled[rows, cols] = holes.composite(
        fill.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy(), pixels[rows, cols], hole[rows, cols])
    return Image.fromarray(filled)


def any_coverage(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H,W) bool -> `size` (h,w) bool: True where the small pixel's window holds a hole pixel.

    The windows of ``F.interpolate(mode="area")`` (rows floor(i H / h) to ceil((i + 1) H / h)), so
    this is ``F.interpolate(hole, size, mode="area") > 0`` without a float copy of the mask.
    """
    def windows(n: int, m: int) -> list[slice]:
        return [slice(i * n // m, -(-(i + 1) * n // m)) for i in range(m)]

    rows_any = np.stack([hole[r].any(axis=0) for r in windows(hole.shape[0], size[0])])  # (h,W)
    return np.stack([rows_any[:, c].any(axis=1) for c in windows(hole.shape[1], size[1])], axis=1)  # (h,w)


def upscale_window(small: Tensor, size: tuple[int, int], rows: slice, cols: slice) -> Tensor:
    """The window (rows, cols) of `small` (C,h,w) scaled bicubically to `size` (H,W): (C,len(rows),len(cols)).

    The same values as ``F.interpolate(small[None], size, mode="bicubic")[0, :, rows, cols]`` (to float
    rounding) without computing the rest: bicubic scaling is separable, so the window is
    ``R @ small @ C.T`` with R and C the rows of the 1-D scaling matrices that the window needs.
    """
    def matrix(n_in: int, n_out: int, window: slice) -> Tensor:  # (len(window), n_in): row i scales to output i
        eye = torch.eye(n_in, dtype=small.dtype, device=small.device)[None, None]  # (1,1,n_in,n_in)
        return F.interpolate(eye, size=(n_out, n_in), mode="bicubic", align_corners=False)[0, 0, window]

    _, h, w = small.shape
    return matrix(h, size[0], rows) @ small @ matrix(w, size[1], cols).T
