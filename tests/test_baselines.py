"""Classical baselines: contract (known pixels kept, finite fill) and a quality check on a gradient."""

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("skimage")

from csa_lib import baselines  # noqa: E402
from csa_lib.metrics import l1  # noqa: E402


def _gradient(size: int = 48) -> np.ndarray:
    """Smooth (size, size, 3) uint8 test image: linear ramps in x, y and x+y."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    image = np.stack([x * 4, y * 4, (x + y) * 2 + 20], axis=-1)  # (size, size, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


def _hole(size: int = 48) -> np.ndarray:
    """(size, size) bool: a 12x12 centre square plus a thin stroke."""
    hole = np.zeros((size, size), bool)
    hole[18:30, 18:30] = True
    hole[5, 4:40] = True
    return hole


@pytest.mark.parametrize("name", list(baselines.BASELINES))
def test_known_pixels_unchanged_and_hole_filled(name):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    hole = np.zeros((32, 40), bool)
    hole[10:20, 12:25] = True
    out = baselines.BASELINES[name](image, hole)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[~hole], image[~hole])
    assert np.isfinite(out.astype(float)).all()
    assert out[hole].std() > 0 or name == "mean_fill"
    # float masks (1 = hole) behave like bool masks; input is not modified
    before = image.copy()
    np.testing.assert_array_equal(baselines.BASELINES[name](image, hole.astype(np.float32)), out)
    np.testing.assert_array_equal(image, before)


def test_hole_content_is_not_leaked():
    """The fill cannot depend on the ground truth inside the hole."""
    image = _gradient()
    hole = _hole()
    other = image.copy()
    other[hole] = 255 - other[hole]
    for fn in baselines.BASELINES.values():
        np.testing.assert_array_equal(fn(image, hole), fn(other, hole))


def test_mean_fill_is_known_mean():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 10
    image[0, 0] = (40, 0, 0)
    hole = np.zeros((4, 4), bool)
    hole[2:, 2:] = True  # known: 12 pixels, one of them 40 in red -> (11*10 + 40) / 12 = 12.5
    out = baselines.mean_fill(image, hole)
    assert out[3, 3].tolist() == [12, 0, 0]  # np.rint(12.5) = 12 (round half to even)


def test_diffusion_beats_mean_fill_on_smooth_gradient():
    image, hole = _gradient(), _hole()
    errors = {name: l1(fn(image, hole), image, hole, "hole") for name, fn in baselines.BASELINES.items()}
    for name in ("telea", "navier_stokes", "biharmonic"):
        assert errors[name] < 0.5 * errors["mean_fill"], errors
    assert errors["biharmonic"] < 0.02  # a linear ramp is biharmonic: near-exact


def test_bad_inputs_raise():
    image = _gradient(8)
    with pytest.raises(ValueError):
        baselines.telea(image.astype(np.float32), np.zeros((8, 8), bool))
    with pytest.raises(ValueError):
        baselines.telea(image, np.zeros((7, 8), bool))
    with pytest.raises(ValueError):
        baselines.mean_fill(image, np.ones((8, 8), bool))
    np.testing.assert_array_equal(baselines.biharmonic(image, np.zeros((8, 8), bool)), image)
