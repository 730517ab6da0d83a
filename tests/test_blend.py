"""Poisson blending: the CG pyramid against a literal dense solve, hand-computed cases, and inpaint's use of it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import torch.nn.functional as F

from csa_lib.engine.blend import detail_gain, detail_gain_map, harmonic_fill, poisson_blend, roughness


def dense_harmonic(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Literal reference: assemble the 4-neighbour Laplace system on the hole pixels and solve it densely."""
    C, H, W = values.shape
    pixels = list(zip(*np.nonzero(hole)))
    index = {p: k for k, p in enumerate(pixels)}
    A = np.zeros((len(pixels), len(pixels)))
    b = np.zeros((len(pixels), C))
    for k, (y, x) in enumerate(pixels):
        for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= yy < H and 0 <= xx < W:
                A[k, k] += 1
                if hole[yy, xx]:
                    A[k, index[(yy, xx)]] -= 1
                else:
                    b[k] += values[:, yy, xx]
    solution = np.linalg.solve(A, b)  # (n, C)
    out = values.copy()
    for k, (y, x) in enumerate(pixels):
        out[:, y, x] = solution[k]
    return out


@pytest.mark.parametrize("h,w,seed", [(9, 13, 0), (40, 37, 1), (70, 45, 2)])
def test_harmonic_fill_matches_a_dense_solve(h, w, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(3, h, w))
    hole = rng.random((h, w)) < 0.5
    hole[h // 4: 3 * h // 4, w // 5: 4 * w // 5] = True  # one big region as well as scattered pixels
    hole[0, :] = True  # and a region along the image border (zero-flux there)
    got = harmonic_fill(torch.from_numpy(values), torch.from_numpy(hole), tol=1e-10).numpy()
    np.testing.assert_allclose(got, dense_harmonic(values, hole), atol=1e-7)
    assert np.array_equal(got[:, ~hole], values[:, ~hole])


def test_full_height_gap_is_filled_linearly():
    # Known columns 0 (value 10) and 8 (value 50), hole in between: harmonic in 1-D is a straight line.
    values = torch.zeros(1, 6, 9, dtype=torch.float64)
    values[:, :, 0], values[:, :, 8] = 10.0, 50.0
    hole = torch.zeros(6, 9, dtype=torch.bool)
    hole[:, 1:8] = True
    got = harmonic_fill(values, hole, tol=1e-12)
    expected = torch.linspace(10, 50, 9, dtype=torch.float64).expand(1, 6, 9)
    torch.testing.assert_close(got, expected)


def test_poisson_blend_removes_a_constant_offset_and_keeps_known_pixels():
    rng = np.random.default_rng(3)
    truth = torch.from_numpy(rng.normal(size=(3, 64, 80)))
    hole = torch.zeros(64, 80, dtype=torch.bool)
    hole[10:50, 20:70] = True
    offset = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)[:, None, None]
    garbage = torch.where(hole[None], torch.full_like(truth, 7.0), truth)  # nothing of the truth in the hole
    blended = poisson_blend(truth + offset, garbage, hole, tol=1e-9)
    torch.testing.assert_close(blended, truth, atol=1e-6, rtol=0)


def test_harmonic_fill_edge_cases():
    values = torch.rand(2, 5, 6)
    assert torch.equal(harmonic_fill(values, torch.zeros(5, 6, dtype=torch.bool)), values)
    with pytest.raises(ValueError, match="whole image"):
        harmonic_fill(values, torch.ones(5, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(C,H,W\)"):
        harmonic_fill(values, torch.zeros(6, 5, dtype=torch.bool))


def test_one_known_pixel_is_enough():
    values = torch.zeros(3, 50, 50)
    values[:, 49, 0] = torch.tensor([1.0, 2.0, 3.0])
    hole = torch.ones(50, 50, dtype=torch.bool)
    hole[49, 0] = False
    got = harmonic_fill(values, hole, tol=1e-6, max_iter=5000)
    torch.testing.assert_close(got, values[:, 49, 0][:, None, None].expand(3, 50, 50), atol=1e-4, rtol=0)


def _small_hole_case(h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A noisy photo stand-in (3,h,w) in [-1, 1], a fill off in contrast and colour, a hole of scattered
    pixels plus a box, far from the image border."""
    rng = np.random.default_rng(seed)
    image = torch.from_numpy(rng.normal(size=(3, h, w))).clamp(-1, 1)
    fill = image * 0.7 + 0.2 + 0.05 * torch.from_numpy(rng.normal(size=(3, h, w)))
    hole = torch.zeros(h, w, dtype=torch.bool)
    hole[h // 2 - 12: h // 2 + 9, w // 3: w // 3 + 25] = True
    hole[h // 2 - 20: h // 2 + 20, w // 3 - 10: w // 3 + 40] |= torch.from_numpy(rng.random((40, 50)) < 0.3)
    return image, fill, hole


def test_the_solve_is_confined_to_the_hole_box_and_stays_exact(monkeypatch):
    from csa_lib.engine import blend

    image, fill, hole = _small_hole_case(300, 400, 4)
    solved = []
    real_cg = blend._conjugate_gradients

    def recording_cg(values, hole_, start, tol, max_iter):
        solved.append(tuple(hole_.shape))
        return real_cg(values, hole_, start, tol, max_iter)

    monkeypatch.setattr(blend, "_conjugate_gradients", recording_cg)
    got = poisson_blend(fill, image, hole, tol=1e-10)
    box_h, box_w = 40 + 2 * blend.MARGIN, 50 + 2 * blend.MARGIN  # the hole spans 40 x 50 pixels
    assert solved and max(solved) == (box_h, box_w), solved  # the finest level: the box, not the photo
    # the same linear system as the whole photo's: the literal dense solve over every hole pixel of the photo
    expected = fill.numpy() + dense_harmonic((image - fill).numpy(), hole.numpy())
    np.testing.assert_allclose(got.numpy(), np.where(hole.numpy()[None], expected, image.numpy()), atol=1e-7)


def test_box_solve_equals_the_whole_image_solve(monkeypatch):
    from csa_lib.engine import blend

    image, fill, hole = _small_hole_case(110, 150, 5)
    exact = fill.numpy() + dense_harmonic((image - fill).numpy(), hole.numpy())  # the literal solve
    exact = torch.from_numpy(np.where(hole.numpy()[None], exact, image.numpy())).float()
    image, fill = image.float(), fill.float()  # what inpaint passes, with its tol=1e-3
    boxed = poisson_blend(fill, image, hole, tol=1e-3)
    monkeypatch.setattr(blend, "MARGIN", 10 ** 6)  # a box as big as the photo: the old whole-image solve
    whole = poisson_blend(fill, image, hole, tol=1e-3)

    def rms(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b)[:, hole].pow(2).mean().sqrt())

    # One linear system, two CG runs that stop at the same RMS residual (1e-3) from different starts: each
    # is off the exact solution by the solver's own error (~0.004 RMS here, half an 8-bit grey level), so
    # the box must be as close to the exact solution as the whole-image solve, and the two within that of
    # each other (0.01 = 1.3 grey levels in [-1, 1] units).
    assert rms(boxed, exact) <= 1.25 * rms(whole, exact) + 1e-3
    assert (boxed - exact).abs().max() <= 1.25 * (whole - exact).abs().max() + 1e-3
    assert rms(boxed, whole) < 0.01
    assert torch.equal(boxed[:, ~hole], image[:, ~hole])


def test_a_hole_at_the_image_corner_keeps_the_zero_flux_border():
    values = torch.from_numpy(np.random.default_rng(6).normal(size=(2, 90, 120)))
    hole = torch.zeros(90, 120, dtype=torch.bool)
    hole[:7, :9] = True  # touches two image borders; the box is clipped there
    got = harmonic_fill(values, hole, tol=1e-12)
    np.testing.assert_allclose(got.numpy(), dense_harmonic(values.numpy(), hole.numpy()), atol=1e-9)


def test_roughness_by_hand():
    spike = torch.zeros(1, 5, 5)
    spike[0, 2, 2] = 1.0  # interior Laplacians: 4 at the spike, -1 at its 4 neighbours, 0 elsewhere
    everywhere = torch.ones(5, 5, dtype=torch.bool)
    assert roughness(spike, everywhere) == pytest.approx(np.sqrt((16 + 4) / 9))
    only_centre = torch.zeros(5, 5, dtype=torch.bool)
    only_centre[2, 2] = True
    assert roughness(spike, only_centre) == pytest.approx(4.0)
    yy, xx = torch.meshgrid(torch.arange(7.0), torch.arange(9.0), indexing="ij")
    ramp = (0.3 * yy - 0.2 * xx)[None].expand(3, 7, 9)  # a sky gradient: no roughness at all
    assert roughness(ramp, torch.ones(7, 9, dtype=torch.bool)) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(roughness(ramp, torch.zeros(7, 9, dtype=torch.bool)))


def _centre_hole(n: int) -> torch.Tensor:
    hole = torch.zeros(n, n, dtype=torch.bool)
    hole[n // 4: 3 * n // 4, n // 4: 3 * n // 4] = True
    return hole


def test_detail_gain_scales_a_fill_down_to_the_roughness_around_the_hole():
    n = 64
    hole = _centre_hole(n)
    x = torch.arange(n, dtype=torch.float64)
    bowl = (0.01 * (x - n / 2) ** 2)[None, None, :].expand(3, n, n)  # the same curvature everywhere, at every scale
    # Twice as curved inside as around: keep half. As curved: keep all (never more than all).
    assert detail_gain(2 * bowl, bowl, hole) == pytest.approx(0.5)
    assert detail_gain(bowl, bowl, hole) == pytest.approx(1.0)
    assert detail_gain(bowl, 3 * bowl, hole) == 1.0
    # A plain sky around, a spot painted in: nothing of the fill's detail is kept.
    sky = torch.linspace(-0.5, 0.5, n, dtype=torch.float64)[None, :, None].expand(3, n, n)
    spot = sky.clone()
    spot[:, n // 2 - 1: n // 2 + 2, n // 2 - 1: n // 2 + 2] += 0.8
    assert detail_gain(spot, sky, hole) == pytest.approx(0.0, abs=1e-9)
    # A fill with no detail of its own, or no known ring to compare with: left as it is.
    assert detail_gain(sky, spot, hole) == 1.0
    assert detail_gain(spot, sky, torch.ones(n, n, dtype=torch.bool)) == 1.0


def test_detail_gain_looks_past_pixel_noise_to_the_scale_of_a_painted_bowl():
    n = 96
    hole = _centre_hole(n)
    rng = np.random.default_rng(0)
    noise = torch.from_numpy(rng.normal(0, 0.02, (3, n, n)))
    yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")
    bowl = 1.5 * (((yy - n / 2) ** 2 + (xx - n / 2) ** 2) / (n / 4) ** 2)[None].expand(3, n, n)
    fill = bowl + 0.5 * noise  # smoother than the sky at 1 px, far rougher at 4 px
    assert detail_gain(fill, noise, hole, scales=(1,)) == 1.0
    assert detail_gain(fill, noise, hole) < 0.2


def _random_case(seed: int, h: int, w: int, rows: slice, cols: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, fill) (3,h,w) float64 noise and a box hole (h,w)."""
    rng = np.random.default_rng(seed)
    image, fill = (torch.from_numpy(rng.normal(size=(3, h, w))) for _ in range(2))
    hole = torch.zeros(h, w, dtype=torch.bool)
    hole[rows, cols] = True
    return image, fill, hole


def test_poisson_blend_gain_scales_the_fills_detail():
    image, fill, hole = _random_case(3, 30, 40, slice(5, 25), slice(8, 30))
    ones, zeros = torch.ones(30, 40, dtype=torch.float64), torch.zeros(30, 40, dtype=torch.float64)
    plain = poisson_blend(fill, image, hole, tol=1e-10)
    assert torch.allclose(poisson_blend(fill, image, hole, tol=1e-10, gain=ones), plain, atol=1e-8)
    # no detail kept: the membrane of the known pixels; half kept: the blend of half the fill
    assert torch.allclose(poisson_blend(fill, image, hole, tol=1e-10, gain=zeros), harmonic_fill(image, hole, tol=1e-10), atol=1e-8)
    assert torch.allclose(poisson_blend(fill, image, hole, tol=1e-10, gain=0.5 * ones),
                          poisson_blend(0.5 * fill, image, hole, tol=1e-10), atol=1e-8)
    # known pixels stay, whatever the gain
    assert torch.equal(poisson_blend(fill, image, hole, gain=zeros)[:, ~hole], image[:, ~hole])
    with pytest.raises(ValueError, match="gain"):
        poisson_blend(fill, image, hole, gain=torch.ones(3, 3))


def test_detail_gain_map_follows_the_surroundings_pixel_by_pixel():
    n = 96
    rng = np.random.default_rng(0)
    texture = torch.from_numpy(rng.normal(0, 0.2, (3, n, n)))
    image = texture.clone()
    image[:, :, : n // 2] = 0.3  # a plain wall on the left, a rough hedge on the right
    hole = torch.zeros(n, n, dtype=torch.bool)
    hole[24:72, 16:80] = True  # across both
    fill = 0.5 * texture  # detail everywhere, half as rough as the hedge
    gain = detail_gain_map(fill, image, hole)
    assert gain.shape == (n, n) and float(gain.min()) >= 0 and float(gain.max()) <= 1
    assert float(gain[40:56, 18:24].max()) < 0.1  # by the wall: none of the fill's detail
    assert float(gain[40:56, 72:78].min()) > 0.9  # by the hedge: all of it
    # nothing to compare with: all kept
    assert torch.equal(detail_gain_map(fill, image, torch.ones(n, n, dtype=torch.bool)), torch.ones(n, n, dtype=torch.float64))


def test_poisson_blend_in_place_touches_only_the_box():
    image, fill, hole = _random_case(5, 50, 60, slice(20, 26), slice(30, 37))
    expected = poisson_blend(fill, image, hole, tol=1e-10)
    target = image.clone()
    result = poisson_blend(fill, target, hole, tol=1e-10, out=target)
    assert result is target and torch.allclose(result, expected, atol=1e-12)
    other = torch.zeros_like(image)
    assert torch.allclose(poisson_blend(fill, image, hole, tol=1e-10, out=other), expected, atol=1e-12)
    with pytest.raises(ValueError, match="out"):
        poisson_blend(fill, image, hole, out=torch.zeros(3, 5, 5))
