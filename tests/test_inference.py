"""Public inference API: any size, any input form, known pixels unchanged, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from csa_lib.config import Config
import torch.nn.functional as F

from csa_lib.inference import any_coverage, generator_from_checkpoint, inpaint, load_model, load_or_init, upscale_window
from csa_lib.model import build_models
from csa_lib.engine.official_layout import save_official
from conftest import Payload


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    cfg = Config.smoke(image_size=32, ngf=4, ndf=4)
    gen, _, _ = build_models(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save({"format": "csa-inpainting/1", "config": cfg.to_dict(), "step": 0,
                "generator": {k: v.half() for k, v in gen.state_dict().items()}}, path)
    return path


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (h + w)], axis=2) * 200
    return (base + rng.integers(0, 40, (h, w, 3))).astype(np.uint8)


def box_mask(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[h // 3: 2 * h // 3, w // 4: w // 2] = 255
    return mask


@pytest.mark.parametrize("h,w", [(32, 32), (20, 50), (97, 61), (300, 180)])
def test_any_size_keeps_known_pixels(model_file, h, w):
    model = load_model(model_file, device="cpu")
    image, mask = photo(h, w), box_mask(h, w)
    result = inpaint(model, Image.fromarray(image), Image.fromarray(mask))
    out = np.asarray(result)
    assert result.mode == "RGB" and result.size == (w, h)
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert not np.array_equal(out[mask > 0], image[mask > 0])


def test_input_forms_give_the_same_result(model_file, tmp_path):
    model = load_model(model_file, device="cpu")
    image, mask = photo(40, 40), box_mask(40, 40)
    ref = np.asarray(inpaint(model, image, mask))
    Image.fromarray(image).save(tmp_path / "i.png")
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert np.array_equal(np.asarray(inpaint(model, tmp_path / "i.png", tmp_path / "m.png")), ref)
    rgba = Image.fromarray(image).convert("RGBA")
    assert np.array_equal(np.asarray(inpaint(model, rgba, Image.fromarray(mask))), ref)
    gray = inpaint(model, Image.fromarray(image[:, :, 0]), mask > 0)
    assert gray.mode == "RGB" and np.array_equal(np.asarray(gray)[mask == 0][:, 1], image[mask == 0][:, 0])


def test_empty_mask_returns_the_image_with_a_warning(model_file):
    image = photo(33, 45)
    with pytest.warns(UserWarning, match="the mask has no hole, so the photo is returned unchanged"):
        out = inpaint(load_model(model_file, device="cpu"), image, np.zeros((33, 45)))
    assert np.array_equal(np.asarray(out), image)


def test_bad_inputs_name_the_problem(model_file, tmp_path):
    model = load_model(model_file, device="cpu")
    with pytest.raises(ValueError, match=r"mask is 20x10 \(WxH\) but the image is 40x30"):
        inpaint(model, photo(30, 40), np.ones((10, 20)))
    with pytest.raises(ValueError, match="no known pixel"):
        inpaint(model, photo(30, 40), np.ones((30, 40)))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="cannot read image file .*broken.png"):
        inpaint(model, tmp_path / "broken.png", np.ones((30, 40)))
    with pytest.raises(ValueError, match="image must be"):
        inpaint(model, np.zeros((4, 4, 2), np.uint8), np.ones((4, 4)))


def test_load_model_sources(model_file, tmp_path):
    model = load_model(model_file, device="cpu")
    assert not model.training and model.image_size == 32
    save_official(model, tmp_path / "official", epoch=30)
    from_official = load_model(tmp_path / "official" / "30_net_G.pth", device="cpu")
    image, mask = photo(32, 32), box_mask(32, 32)
    assert np.array_equal(np.asarray(inpaint(model, image, mask)), np.asarray(inpaint(from_official, image, mask)))
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_model(tmp_path / "nothing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a csa-inpainting checkpoint"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "truncated.pt").write_bytes(model_file.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_model(tmp_path / "truncated.pt")


def test_a_model_with_fewer_levels_than_its_size_loads_and_fills_at_its_size(model_file, tmp_path):
    small = load_model(model_file, device="cpu")  # 32 px, 5 levels
    cfg = Config.smoke(image_size=64, unet_depth=5, ngf=4, ndf=4)
    torch.save({"format": "csa-inpainting/1", "config": cfg.to_dict(), "step": 0,
                "generator": small.state_dict()}, tmp_path / "at64.pt")
    large = load_model(tmp_path / "at64.pt", device="cpu")
    assert (large.image_size, large.depth) == (64, 5)
    calls = []
    large.register_forward_hook(lambda module, args, out: calls.append(args[0].shape))
    inpaint(large, photo(64, 64), box_mask(64, 64))
    assert calls == [(1, 3, 64, 64)]  # the network ran at 64 px, not at 2 ** depth


def test_load_or_init_gives_the_weights_or_a_fresh_model_and_says_which(model_file, tmp_path):
    loaded, source = load_or_init(model_file, device="cpu")
    assert source == f"weights from {model_file}" and not loaded.training
    expected = load_model(model_file, device="cpu").state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())

    torch.manual_seed(3)
    fresh, source = load_or_init(tmp_path / "missing.pt", fresh=Config.smoke(image_size=32, ngf=4), device="cpu")
    assert "UNTRAINED" in source and "missing.pt" in source
    assert (fresh.image_size, fresh.ngf, fresh.training) == (32, 4, False)
    conv = fresh.refine_net.levels[0].widen  # N(0, 0.02) weights and zero biases, as the original
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.2) and not conv.bias.any()

    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pt"):  # unreadable weights are never replaced by noise
        load_or_init(tmp_path / "broken.pt", device="cpu")


def test_checkpoint_of_another_shape_is_reported():
    cfg = Config.smoke(image_size=32, ngf=4)
    gen, _, _ = build_models(Config.smoke(image_size=32, ngf=8))
    with pytest.raises(ValueError, match="do not fit a model with ngf=4"):
        generator_from_checkpoint({"config": cfg.to_dict(), "generator": gen.state_dict()})


def test_poisson_blend_joins_the_fill_to_its_surroundings(model_file):
    model = load_model(model_file, device="cpu")  # random weights: a raw fill far off in colour
    h, w = 60, 80
    image, mask = photo(h, w), box_mask(h, w)
    hole = mask > 0
    raw = np.asarray(inpaint(model, image, mask, blend="none")).astype(float)
    blended = np.asarray(inpaint(model, image, mask)).astype(float)
    for out in (raw, blended):
        assert np.array_equal(out[~hole], image[~hole])
    # The seam: each hole pixel on the hole's border against its known neighbour just outside.
    ys, xs = np.nonzero(hole)
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()

    def seam(out: np.ndarray) -> float:
        pairs = [(out[top, left:right + 1], image[top - 1, left:right + 1]),
                 (out[bottom, left:right + 1], image[bottom + 1, left:right + 1]),
                 (out[top:bottom + 1, left], image[top:bottom + 1, left - 1]),
                 (out[top:bottom + 1, right], image[top:bottom + 1, right + 1])]
        return float(np.mean([np.abs(a - b).mean() for a, b in pairs]))

    assert seam(blended) < 0.5 * seam(raw)
    with pytest.raises(ValueError, match="blend"):
        inpaint(model, image, mask, blend="alpha")


@pytest.mark.parametrize("h,w", [(40, 40), (300, 180), (20, 50)])
def test_nothing_under_the_hole_reaches_the_result(model_file, h, w):
    model = load_model(model_file, device="cpu")
    image, mask = photo(h, w), box_mask(h, w)
    hole = mask > 0
    results = [np.asarray(inpaint(model, np.where(hole[..., None], np.uint8(v), image), mask)) for v in (0, 255)]
    results.append(np.asarray(inpaint(model, image, mask)))  # the truth left in the hole
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


def test_load_model_refuses_payloads_in_files_and_run_folders(model_file, tmp_path):
    from csa_lib.engine.checkpoint import UnsafeCheckpointError

    marker = tmp_path / "ran.txt"
    real = torch.load(model_file, weights_only=True)
    (tmp_path / "run").mkdir()
    torch.save(dict(real, extra=Payload(marker)), tmp_path / "hidden.pt")  # beside real weights
    torch.save(Payload(marker), tmp_path / "plain.pt")
    torch.save(dict(real, extra=Payload(marker)), tmp_path / "run" / "last.pt")
    for source, name in ((tmp_path / "hidden.pt", "hidden.pt"), (tmp_path / "plain.pt", "plain.pt"),
                         (tmp_path / "run", "last.pt")):
        with pytest.raises(UnsafeCheckpointError, match=rf"{name} holds objects that cannot be loaded safely"):
            load_model(source, device="cpu")
    assert not marker.exists()


def test_load_model_refuses_damaged_weights(model_file, tmp_path):
    state = torch.load(model_file, weights_only=True)
    weight = max(state["generator"].values(), key=lambda v: v.numel())  # random values: its bytes are unique
    data = bytearray(model_file.read_bytes())
    at = data.find(weight.numpy().tobytes())
    assert at >= 0 and data.find(weight.numpy().tobytes(), at + 1) < 0
    data[at:at + 2] = torch.tensor([60000.0], dtype=torch.float16).numpy().tobytes()  # a wrong value, CRC now off
    (tmp_path / "damaged.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged.pt is damaged: .* fails its CRC check"):
        load_model(tmp_path / "damaged.pt", device="cpu")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.pt is empty \(0 bytes\)"):
        load_model(tmp_path / "empty.pt", device="cpu")


@pytest.mark.parametrize("big,small", [((37, 53), (8, 11)), ((256, 256), (128, 128)), ((600, 800), (96, 128)), ((5, 7), (5, 7))])
def test_any_coverage_is_area_scaling_above_zero(big, small):
    rng = np.random.default_rng(sum(big))
    hole = rng.random(big) < 0.02
    hole[big[0] // 2:, : big[1] // 3] = True
    expected = F.interpolate(torch.from_numpy(hole)[None, None].float(), size=small, mode="area")[0, 0] > 0
    assert np.array_equal(any_coverage(hole, small), expected.numpy())


@pytest.mark.parametrize("small,size,rows,cols", [((3, 24, 32), (240, 320), slice(50, 131), slice(0, 77)),
                                                   ((3, 17, 9), (101, 50), slice(0, 101), slice(20, 50)),
                                                   ((1, 8, 8), (8, 8), slice(2, 5), slice(3, 4))])
def test_upscale_window_is_the_crop_of_the_whole_upscale(small, size, rows, cols):
    x = torch.randn(small, dtype=torch.float64)
    whole = F.interpolate(x[None], size=size, mode="bicubic", align_corners=False)[0]
    assert torch.allclose(upscale_window(x, size, rows, cols), whole[:, rows, cols], atol=1e-10)


def test_textured_surroundings_keep_all_of_the_fill(model_file, monkeypatch):
    """The detail gain is 1 by rough surroundings (the offset removal, tested in test_plain_fill, set aside)."""
    monkeypatch.setattr("csa_lib.inference.fill_offset", lambda fill, hole: torch.zeros_like(fill))
    model = load_model(model_file, device="cpu")
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)  # rougher than any fill
    mask = box_mask(64, 64)
    assert np.array_equal(np.asarray(inpaint(model, image, mask)), np.asarray(inpaint(model, image, mask, blend="poisson_full")))
