"""Poisson blending: the CG pyramid against a literal dense solve, hand-computed cases, and inpaint's use of it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from csa_lib.blend import harmonic_fill, poisson_blend


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
