"""Classical baselines: contract (known pixels kept, finite fill) and a quality check on a gradient."""

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("skimage")

from csa_lib.eval import baselines  # noqa: E402
from csa_lib.eval.metrics import l1  # noqa: E402


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


def _stripes(size: int = 64) -> np.ndarray:
    """(size, size, 3) uint8 diagonal stripes, 4 px wide, of two colours: texture a diffusion cannot continue."""
    y, x = np.mgrid[0:size, 0:size]
    on = ((x + y) // 4) % 2 == 0
    return np.where(on[..., None], np.array([200, 60, 40], np.uint8), np.array([30, 90, 160], np.uint8))


def test_texture_baselines_continue_stripes():
    """PatchMatch and FSR copy/extend the stripes; a flat fill and Telea's diffusion leave a smear."""
    image = _stripes()
    hole = np.zeros((64, 64), bool)
    hole[22:42, 22:42] = True
    errors = {name: l1(fn(image, hole), image, hole, "hole") for name, fn in baselines.BASELINES.items()}
    for name in ("patchmatch", "fsr_fast"):
        assert errors[name] < 0.25 * errors["mean_fill"], errors
        assert errors[name] < 0.25 * errors["telea"], errors


def test_patchmatch_repeats_with_its_seed():
    """The randomised search is seeded on every call: same seed, same fill, whatever ran in between."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    hole = _hole()
    first = baselines.patchmatch(image, hole, seed=1)
    other = baselines.patchmatch(image, hole, seed=2)
    assert not np.array_equal(first, other)  # the seed reaches the search
    np.testing.assert_array_equal(baselines.patchmatch(image, hole, seed=1), first)
    np.testing.assert_array_equal(baselines.fsr_fast(image, hole), baselines.fsr_fast(image, hole))


def test_fsr_reads_its_mask_as_known_pixels():
    """xphoto's mask is nonzero = known (the opposite of cv2.inpaint): a hole in a flat image fills flat."""
    image = np.full((40, 40, 3), (120, 80, 200), np.uint8)
    hole = np.zeros((40, 40), bool)
    hole[10:30, 12:28] = True
    out = baselines.fsr_fast(image, hole)
    assert np.abs(out[hole].astype(int) - image[hole]).max() <= 2


@pytest.mark.parametrize("name", list(baselines.BASELINES))
def test_every_baseline_runs_in_the_one_frame(name, monkeypatch):
    """Each method hands only its fill to `_baseline`, which blanks the hole and pastes the known pixels back."""
    seen: list[np.ndarray] = []
    real = baselines._baseline

    def spy(image, mask, fill):
        return real(image, mask, lambda masked, hole: seen.append(masked.copy()) or fill(masked, hole))

    monkeypatch.setattr(baselines, "_baseline", spy)
    hole = _hole()
    baselines.BASELINES[name](_gradient(), hole)
    assert len(seen) == 1 and (seen[0][hole] == 0).all(), f"{name} filled outside baselines._baseline"
