"""The original checkpoint layout: every key and shape, the round trip, and clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from csa_lib.model import CSAGenerator, FeatureDiscriminator, PatchDiscriminator, init_weights
from csa_lib.engine.official_layout import (OfficialLayoutError, export_official, export_official_discriminators,
                              find_official_pair, load_official, load_official_discriminators, save_official)
from conftest import centre_mask

SHAPES = json.loads((Path(__file__).parent / "data" / "csa_state_dict_shapes.json").read_text())


def test_export_has_exactly_the_original_keys_shapes_and_order():
    net_g, net_p = export_official(CSAGenerator(64, 256))
    for name, state in (("netG", net_g), ("netP", net_p)):
        assert list(state) == list(SHAPES[name])
        assert {k: list(v.shape) for k, v in state.items()} == SHAPES[name]
    net_d, net_f = export_official_discriminators(PatchDiscriminator(64), FeatureDiscriminator(64))
    assert {k: list(v.shape) for k, v in net_d.items()} == SHAPES["netD"]
    assert {k: list(v.shape) for k, v in net_f.items()} == SHAPES["netF"]


def random_official(ngf: int) -> tuple[dict, dict]:
    """State dicts in the original layout with random values, built from the JSON at ngf 64 (scaled)."""
    gen = torch.Generator().manual_seed(ngf)
    scale = lambda n: n if n in (1, 3, 6) else n * ngf // 64  # noqa: E731
    out = []
    for name in ("netG", "netP"):
        out.append({k: torch.randn([scale(d) if i < 2 else d for i, d in enumerate(s)], generator=gen) * 0.05
                    for k, s in SHAPES[name].items()})
    return out[0], out[1]


@pytest.mark.parametrize("ngf", [8, 16])
def test_load_official_infers_width_and_reproduces_the_weights(ngf):
    net_g, net_p = random_official(ngf)
    gen = load_official(net_g, net_p)
    assert gen.ngf == ngf and gen.image_size == 256
    g2, p2 = export_official(gen)
    assert all(torch.equal(g2[k], net_g[k]) for k in net_g) and all(torch.equal(p2[k], net_p[k]) for k in net_p)


def test_round_trip_through_files_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    gen = CSAGenerator(ngf=8, image_size=256)
    init_weights(gen)
    files = save_official(gen, tmp_path, epoch=30)
    assert [f.name for f in files] == ["30_net_G.pth", "30_net_P.pth"]
    loaded = load_official(*find_official_pair(tmp_path / "30_net_G.pth"))
    image, mask = torch.rand(1, 3, 256, 256) * 2 - 1, centre_mask(1, 256)
    with torch.no_grad():
        a, b = gen(image, mask), loaded(image, mask)
    assert torch.equal(a.coarse, b.coarse) and torch.equal(a.refined, b.refined)


def test_smaller_depth_round_trip():
    gen = CSAGenerator(ngf=4, image_size=64)
    loaded = load_official(*export_official(gen))
    assert loaded.depth == 6 and loaded.image_size == 64


def test_old_checkpoint_extras_are_tolerated():
    net_g, net_p = random_official(8)
    net_g = {f"module.{k}": v for k, v in net_g.items()}  # DataParallel prefix
    net_p = dict(net_p, **{"model.model.1.model.2.running_mean": torch.zeros(16),
                           "model.model.1.model.2.running_var": torch.ones(16)})  # PyTorch 0.3 InstanceNorm
    assert load_official(net_g, net_p).ngf == 8


def test_missing_and_unexpected_keys_are_named():
    net_g, net_p = random_official(8)
    del net_g["model.model.1.model.6.model.6.model.7.weight"]  # the IN after CSA
    net_g["model.model.1.model.6.model.6.model.5.weight"] = torch.zeros(3)
    with pytest.raises(OfficialLayoutError) as info:
        load_official(net_g, net_p)
    message = str(info.value)
    assert "missing keys: model.model.1.model.6.model.6.model.7.weight" in message
    assert "unexpected keys: model.model.1.model.6.model.6.model.5.weight" in message


def test_wrong_shape_is_named():
    net_g, net_p = random_official(8)
    net_p["model.model.0.bias"] = torch.zeros(5)
    with pytest.raises(OfficialLayoutError, match=r"netP .*wrong shapes: model.model.0.bias: \(5,\)"):
        load_official(net_g, net_p)


def test_not_a_state_dict_and_missing_files(tmp_path):
    with pytest.raises(OfficialLayoutError, match="no 'model.model.0.weight'"):
        load_official({"foo.weight": torch.zeros(1)}, {})
    (tmp_path / "bad_net_G.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(OfficialLayoutError, match="bad_net_G.pth"):
        load_official(tmp_path / "bad_net_G.pth", tmp_path / "bad_net_G.pth")
    with pytest.raises(FileNotFoundError, match="_net_P"):
        find_official_pair(tmp_path / "bad_net_G.pth")


def test_discriminators_round_trip():
    pd, fd = PatchDiscriminator(16), FeatureDiscriminator(16)
    init_weights(pd), init_weights(fd)
    pd2, fd2 = load_official_discriminators(*export_official_discriminators(pd, fd))
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(pd(x), pd2(x))
    f = torch.randn(1, 256, 16, 16)
    assert torch.equal(fd(f), fd2(f))
