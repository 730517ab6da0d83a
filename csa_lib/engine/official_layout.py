"""Load and write the original code's checkpoint layout (`<epoch>_net_G.pth`, `_P`, `_D`, `_F`).

The original nests `nn.Sequential` blocks, so its keys read like
`model.model.1.model.6.model.6.model.4.weight`; `tests/data/csa_state_dict_shapes.json` lists them
all at ngf = 64. This module is the one place that knows those names: it builds, for a given
depth, the table our-name -> official-name, and converts in both directions.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Union

import torch
from torch import Tensor

from .checkpoint import CheckpointError, read_torch_file
from ..model import CSA_LEVEL, CSAGenerator, FeatureDiscriminator, PatchDiscriminator

StateDict = Mapping[str, Tensor]
Source = Union[StateDict, str, os.PathLike]


class OfficialLayoutError(ValueError):
    """A state dict does not have the original layout (names the missing and unexpected keys)."""


# Sequential indices inside the original blocks (`docs/csa_spec.md` §10).
_REFINE_MIDDLE = {"down": 1, "down_norm": 2, "widen": 4, "widen_norm": 5, "child": 6,
                  "narrow": 8, "narrow_norm": 9, "up": 11, "up_norm": 12}
_REFINE_CSA = {"down": 1, "down_norm": 2, "widen": 4, "widen_norm": 7, "child": 8,
               "narrow": 11, "narrow_norm": 12, "up": 14, "up_norm": 15}
_REFINE_INNER = {"down": 1, "up": 3, "up_norm": 4}
_COARSE_MIDDLE = {"down": 1, "down_norm": 2, "child": 3, "up": 5, "up_norm": 6}
_COARSE_INNER = {"down": 1, "up": 3, "up_norm": 4}
_DISC_PREFIX = ("layers.", "model.")  # ours, official


def _refine_names(depth: int) -> dict[str, str]:
    """our refine_net parameter prefix -> official netG prefix, for every conv/norm of a depth."""
    names = {"in_conv": "model.model.0", "out_conv": "model.model.3"}
    prefix = "model.model.1"
    for i in range(1, depth + 1):
        table = _REFINE_INNER if i == depth else _REFINE_CSA if i == CSA_LEVEL else _REFINE_MIDDLE
        for ours, index in table.items():
            if ours != "child":
                names[f"levels.{i - 1}.{ours}"] = f"{prefix}.model.{index}"
        if i < depth:
            prefix = f"{prefix}.model.{table['child']}"
    return names


def _coarse_names(depth: int) -> dict[str, str]:
    """our coarse_net parameter prefix -> official netP prefix."""
    names = {"levels.0.down": "model.model.0", "levels.0.up": "model.model.3"}
    prefix = "model.model.1"
    for k in range(1, depth):
        table = _COARSE_INNER if k == depth - 1 else _COARSE_MIDDLE
        for ours, index in table.items():
            if ours != "child":
                names[f"levels.{k}.{ours}"] = f"{prefix}.model.{index}"
        if k < depth - 1:
            prefix = f"{prefix}.model.{table['child']}"
    return names


def _rename(state: StateDict, prefixes: dict[str, str]) -> "OrderedDict[str, Tensor]":
    """Rename `prefix.param` keys through a prefix table (keys with no entry are kept as they are)."""
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in state.items():
        head, _, param = key.rpartition(".")
        out[f"{prefixes.get(head, head)}.{param}"] = value
    return out


def _load(source: Source) -> "OrderedDict[str, Tensor]":
    """A state dict from a mapping or a `.pth` path; strips `module.` and old InstanceNorm buffers."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint file at {path}")
        try:
            source = read_torch_file(path, map_location="cpu")  # weights_only, CRCs checked
        except CheckpointError as error:  # re-raised in this module's own type, with the file name
            raise OfficialLayoutError(f"could not read {path} as a PyTorch state dict: {error}") from error
    if not isinstance(source, Mapping):
        raise OfficialLayoutError(f"expected a state dict (a mapping of names to tensors), got {type(source).__name__}")
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in source.items():
        key = key[len("module."):] if key.startswith("module.") else key
        # PyTorch <= 0.3 InstanceNorm layers kept running stats; modern ones do not (spec §10)
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        out[key] = value
    return out


def _check(kind: str, state: StateDict, expected: Mapping[str, torch.Size]) -> None:
    """Raise OfficialLayoutError naming missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: {tuple(state[k].shape)} (expected {tuple(expected[k])})"
             for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if missing or unexpected or wrong:
        parts = [f"{kind} state dict does not match the original layout"]
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise OfficialLayoutError("; ".join(parts))


def _infer_depth(net_g: StateDict) -> int:
    """Refinement depth from the nesting of the innermost transposed conv (8 for the original)."""
    prefixes = [k[: -len(".weight")] for k in net_g if k.endswith(".weight")]
    deepest = max(prefixes, key=lambda k: k.count(".model."))
    return deepest.count(".model.") - 1


def load_official(net_g: Source, net_p: Source) -> CSAGenerator:
    """A CSAGenerator holding the original's weights: netG (refinement) and netP (coarse) state dicts or paths.

    `ngf` is read from the shapes (the first conv's output channels) and the depth from the key
    nesting (8 = the original 256-px model).
    """
    g_state, p_state = _load(net_g), _load(net_p)
    if "model.model.0.weight" not in g_state:
        raise OfficialLayoutError("netG state dict has no 'model.model.0.weight': not an original CSA "
                                  f"refinement net (first keys: {list(g_state)[:4]})")
    ngf = int(g_state["model.model.0.weight"].shape[0])
    depth = _infer_depth(g_state)
    if depth < CSA_LEVEL + 1:
        raise OfficialLayoutError(f"netG nesting gives depth {depth}; the CSA net needs at least {CSA_LEVEL + 1}")
    generator = CSAGenerator(ngf=ngf, image_size=2 ** depth)
    g_expected, p_expected = export_official(generator)
    _check("netG", g_state, {k: v.shape for k, v in g_expected.items()})
    _check("netP", p_state, {k: v.shape for k, v in p_expected.items()})
    ours: dict[str, Tensor] = {}
    for net_name, state, table in (("refine_net", g_state, _refine_names(depth)),
                                   ("coarse_net", p_state, _coarse_names(depth))):
        inverse = {official: our for our, official in table.items()}
        for key, value in _rename(state, inverse).items():
            ours[f"{net_name}.{key}"] = value
    generator.load_state_dict(ours, strict=True)
    return generator


def export_official(generator: CSAGenerator) -> tuple["OrderedDict[str, Tensor]", "OrderedDict[str, Tensor]"]:
    """(netG, netP) state dicts of a CSAGenerator in the original layout (CPU tensors)."""
    state = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    refine = {k[len("refine_net."):]: v for k, v in state.items() if k.startswith("refine_net.")}
    coarse = {k[len("coarse_net."):]: v for k, v in state.items() if k.startswith("coarse_net.")}
    return (_official_order(_rename(refine, _refine_names(generator.depth))),
            _official_order(_rename(coarse, _coarse_names(generator.depth))))


def _official_order(state: StateDict) -> "OrderedDict[str, Tensor]":
    """Keys in the order the original's nested Sequentials register them (weight before bias)."""
    def key(name: str) -> tuple:
        *path, param = name.split(".")
        return tuple(int(p) for p in path if p.isdigit()), param != "weight"
    return OrderedDict(sorted(state.items(), key=lambda item: key(item[0])))


def _disc_rename(state: StateDict, to_official: bool) -> "OrderedDict[str, Tensor]":
    src, dst = _DISC_PREFIX if to_official else _DISC_PREFIX[::-1]
    return OrderedDict((dst + k[len(src):] if k.startswith(src) else k, v) for k, v in state.items())


def export_official_discriminators(patch_disc: PatchDiscriminator, feature_disc: FeatureDiscriminator):
    """(netD, netF) state dicts in the original layout."""
    return (_disc_rename({k: v.detach().cpu() for k, v in patch_disc.state_dict().items()}, True),
            _disc_rename({k: v.detach().cpu() for k, v in feature_disc.state_dict().items()}, True))


def load_official_discriminators(net_d: Source, net_f: Source) -> tuple[PatchDiscriminator, FeatureDiscriminator]:
    """PatchDiscriminator and FeatureDiscriminator from the original's netD / netF (width from the shapes)."""
    d_state, f_state = _load(net_d), _load(net_f)
    for kind, state, key in (("netD", d_state, "model.0.weight"), ("netF", f_state, "model.0.weight")):
        if key not in state:
            raise OfficialLayoutError(f"{kind} state dict has no '{key}' (first keys: {list(state)[:4]})")
    patch_disc = PatchDiscriminator(ndf=int(d_state["model.0.weight"].shape[0]))
    feature_disc = FeatureDiscriminator(ndf=int(f_state["model.0.weight"].shape[0]) // 8)
    for kind, net, state in (("netD", patch_disc, d_state), ("netF", feature_disc, f_state)):
        expected = _disc_rename(net.state_dict(), True)
        _check(kind, state, {k: v.shape for k, v in expected.items()})
        net.load_state_dict(_disc_rename(state, False), strict=True)
    return patch_disc, feature_disc


_EPOCH_FILE = re.compile(r"^(?P<epoch>.*)_net_(?P<net>[GPDF])\.pth$")


def save_official(generator: CSAGenerator, directory: str | os.PathLike, epoch: int | str = "latest",
                  patch_disc: PatchDiscriminator | None = None,
                  feature_disc: FeatureDiscriminator | None = None) -> list[Path]:
    """Write `<epoch>_net_G.pth` and `_P` (and `_D`, `_F` when given) that the original code can load."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    net_g, net_p = export_official(generator)
    files = {"G": net_g, "P": net_p}
    if patch_disc is not None and feature_disc is not None:
        files["D"], files["F"] = export_official_discriminators(patch_disc, feature_disc)
    written = []
    for label, state in files.items():
        path = directory / f"{epoch}_net_{label}.pth"
        tmp = path.with_suffix(".pth.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        written.append(path)
    return written


def find_official_pair(path: str | os.PathLike) -> tuple[Path, Path]:
    """(netG, netP) paths from a `N_net_G.pth` / `N_net_P.pth` file or a folder holding one pair."""
    path = Path(path)
    if path.is_dir():
        pairs = sorted(path.glob("*_net_G.pth"))
        if not pairs:
            raise FileNotFoundError(f"no '<epoch>_net_G.pth' file in {path}")
        path = pairs[-1]
    match = _EPOCH_FILE.match(path.name)
    if not match:
        raise ValueError(f"{path.name} is not named like the original's '<epoch>_net_G.pth'")
    epoch = match["epoch"]
    net_g, net_p = path.with_name(f"{epoch}_net_G.pth"), path.with_name(f"{epoch}_net_P.pth")
    for p in (net_g, net_p):
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing: the original layout needs both _net_G and _net_P")
    return net_g, net_p
