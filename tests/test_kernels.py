"""Known answers for the shared numerical kernels (`solvers._kernels`) over hundreds of random instances."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from solvers._kernels import least_squares_on_support


def reference(A: np.ndarray, y: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimum-norm least-squares solution on the support from the SVD of A_S (full rank here), and the
    singular values."""
    U, sv, Vt = np.linalg.svd(A[:, support], full_matrices=False)
    x = np.zeros(A.shape[1])
    x[support] = Vt.T @ ((U.T @ y) / sv)
    return x, sv


def instance(seed: int, shape: str):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(3, 120))
    d = int(rng.integers(m + 1, 3 * m + 2))
    s = int(rng.integers(1, m + 1)) if shape == "tall" else int(rng.integers(m + 1, min(d, 2 * m) + 1))
    A = rng.standard_normal((m, d)) * 10.0 ** rng.uniform(-3, 3)  # the answer must not depend on the scale
    support = np.sort(rng.choice(d, size=s, replace=False))
    x = np.zeros(d)
    x[support[: max(1, s // 2)]] = rng.standard_normal(max(1, s // 2))
    noise = rng.standard_normal(m) * (rng.uniform() < 0.5)  # half the instances have no exact fit
    return A, A @ x + noise * np.linalg.norm(A @ x) / np.sqrt(m), support


@pytest.mark.parametrize("shape", ["tall", "wide"])
def test_least_squares_agrees_with_the_svd_solution_over_300_instances(shape):
    """|S| ≤ m: the least-squares solution; |S| > m: the minimum-norm one. Scaled error ≤ cond(A_S)·1e-13."""
    for seed in range(300):
        A, y, support = instance(seed, shape)
        x, (expected, sv) = least_squares_on_support(A, y, support), reference(A, y, support)
        assert np.all(x[np.setdiff1d(np.arange(A.shape[1]), support)] == 0.0)
        condition = sv[0] / sv[-1]
        # error of a backward-stable solve, relative to the scale of the problem (‖y‖/σ_min bounds ‖x‖)
        assert np.linalg.norm(x - expected) <= condition * 1e-13 * np.linalg.norm(y) / sv[-1] + 1e-300, seed


def test_ill_conditioned_and_rank_deficient_supports_take_the_pivoted_qr():
    """cond(A_S) ≥ 10⁵ or a repeated column: the result is exactly ``gelsy``'s (the fallback), never NaN."""
    rng = np.random.default_rng(0)
    for seed in range(100):
        A = rng.standard_normal((40, 60))
        support = np.sort(rng.choice(60, size=30, replace=False))
        if seed % 2:
            A[:, support[1]] = A[:, support[0]]  # rank deficient
        else:
            A[:, support] *= np.logspace(0, -6, 30)  # cond(A_S) ≈ 10⁶
        y = rng.standard_normal(40)
        x = least_squares_on_support(A, y, support)
        gelsy = scipy.linalg.lstsq(A[:, support], y, lapack_driver="gelsy")[0]
        np.testing.assert_array_equal(x[support], gelsy)


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_extreme_scales_fall_back_instead_of_overflowing(scale):
    """AᵀA under- or overflows at these scales; the pivoted QR does not."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((20, 30)) * scale
    x_star = np.zeros(30)
    x_star[:5] = 1.0
    x = least_squares_on_support(A, A @ x_star, np.arange(10))
    np.testing.assert_allclose(x, x_star, atol=1e-10)


def test_empty_support_is_zero():
    assert not least_squares_on_support(np.ones((3, 4)), np.ones(3), np.array([], dtype=int)).any()
