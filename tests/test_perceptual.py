"""Shift-tolerant LPIPS: against the stlpips-pytorch package's own forward, and every weight loaded."""

import numpy as np
import pytest
import torch

stlpips = pytest.importorskip("stlpips_pytorch.stlpips")
ndimage = pytest.importorskip("scipy.ndimage")

from csa_lib.eval import perceptual  # noqa: E402


def _photo(size: int = 64, seed: int = 0) -> np.ndarray:
    """A textured (size, size, 3) uint8 image: smooth colour blobs plus fine detail."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(size, size, 3))
    coarse = ndimage.gaussian_filter(noise, (6, 6, 0)) * 600 + 128
    fine = ndimage.gaussian_filter(noise, (1, 1, 0)) * 120
    return np.clip(coarse + fine, 0, 255).astype(np.uint8)


def test_identical_images_give_zero():
    image = _photo()
    assert perceptual.lpips(image, image) == 0.0


def test_equals_the_packages_own_lpips():
    """Reference: the package's LPIPS with its own loader, on [-1, 1] tensors of the same images."""
    result, truth = _photo(48, 1), _photo(48, 2)
    reference = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False)
    to_tensor = lambda image: torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None] / 127.5 - 1  # noqa: E731
    with torch.no_grad():
        expected = float(reference(to_tensor(result), to_tensor(truth)))
    assert expected > 0.05
    assert perceptual.lpips(result, truth) == pytest.approx(expected, rel=1e-5)
    # float input in [0, 255] is the same canonical form as uint8
    assert perceptual.lpips(result.astype(np.float64), truth) == pytest.approx(expected, rel=1e-5)


def test_blur_is_farther_than_a_one_pixel_shift():
    """The point of the shift-tolerant variant: a 1-px shift barely counts, a blur does."""
    image = _photo(96, 3)
    shifted = np.roll(image, 1, axis=1)
    blurred = np.clip(ndimage.gaussian_filter(image.astype(np.float64), (2, 2, 0)), 0, 255).astype(np.uint8)
    shift_distance = perceptual.lpips(shifted, image)
    blur_distance = perceptual.lpips(blurred, image)
    assert blur_distance > 10 * shift_distance, (blur_distance, shift_distance)


def test_every_weight_is_loaded(tmp_path):
    """A file with a missing backbone weight, a missing blur-pool buffer, an extra or a misshapen tensor fails."""
    state = torch.load(perceptual.weights_path(), map_location="cpu", weights_only=True)
    model = perceptual.load_lpips()
    loaded = model.state_dict()
    for key, value in state.items():  # every tensor of the file is in the network
        assert torch.equal(loaded[key], value), key
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    damaged = {
        "backbone": {k: v for k, v in state.items() if k != "net.slice3.9.weight"},
        "blur-pool": {k: v for k, v in state.items() if k != "net.slice2.4.filt"},
        "head": {k: v for k, v in state.items() if k != "lin2.model.1.weight"},
        "extra": {**state, "net.slice6.0.weight": torch.zeros(1)},
    }
    for name, broken in damaged.items():
        path = tmp_path / f"{name}.pth"
        torch.save(broken, path)
        with pytest.raises(ValueError, match="do not match"):
            perceptual.load_lpips(path)
    misshapen = {**state, "lin0.model.1.weight": torch.zeros(1, 32, 1, 1)}
    torch.save(misshapen, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match="do not fit"):
        perceptual.load_lpips(tmp_path / "shape.pth")
    with pytest.raises(FileNotFoundError):
        perceptual.load_lpips(tmp_path / "none.pth")


def test_bad_inputs_raise():
    image = _photo(32)
    with pytest.raises(ValueError, match="shape mismatch"):
        perceptual.lpips(image, image[:, :30])
    with pytest.raises(ValueError, match="at least 21"):
        perceptual.lpips(image[:20], image[:20])
    assert perceptual.lpips(image[:21, :21], image[:21, :21]) == 0.0  # the smallest size that runs
    with pytest.raises(ValueError):
        perceptual.lpips(image[..., 0], image[..., 0])
