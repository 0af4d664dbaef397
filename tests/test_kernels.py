"""Known answers for the shared numerical kernels (`solvers._kernels`) over hundreds of random instances."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from solvers._kernels import _wide_by_woodbury, factor_row_gram, least_squares_on_support


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


def given_row_gram(A: np.ndarray, with_row_gram: bool):
    """The factored AAᵀ as `solvers._kernels.row_gram_factor` hands it to the kernel (a callable), or None."""
    if not with_row_gram:
        return None
    factor = factor_row_gram(A)
    return lambda: factor


@pytest.mark.parametrize("shape, with_row_gram", [("tall", False), ("wide", False), ("wide", True)],
                         ids=["tall", "wide", "wide-woodbury"])
def test_least_squares_agrees_with_the_svd_solution_over_300_instances(shape, with_row_gram):
    """|S| ≤ m: the least-squares solution; |S| > m: the minimum-norm one. Scaled error ≤ cond(A_S)·1e-13,
    whether G = A_SA_Sᵀ is formed or, given the factored AAᵀ, its inverse applied by the Woodbury identity (wide
    supports that leave out fewer than m columns: most of the wide instances here)."""
    by_woodbury = 0
    for seed in range(300):
        A, y, support = instance(seed, shape)
        row_gram = given_row_gram(A, with_row_gram)
        x = least_squares_on_support(A, y, support, row_gram)
        if row_gram is not None and A.shape[0] < support.size and A.shape[1] - support.size < A.shape[0]:
            by_woodbury += _wide_by_woodbury(A, y, support, row_gram()) is not None
        expected, sv = reference(A, y, support)
        assert np.all(x[np.setdiff1d(np.arange(A.shape[1]), support)] == 0.0)
        condition = sv[0] / sv[-1]
        # error of a backward-stable solve, relative to the scale of the problem (‖y‖/σ_min bounds ‖x‖)
        assert np.linalg.norm(x - expected) <= condition * 1e-13 * np.linalg.norm(y) / sv[-1] + 1e-300, seed
    assert by_woodbury >= (180 if with_row_gram else 0)  # of the 200 wide instances that leave out < m columns


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


def test_wide_supports_formed_from_the_row_gram_fall_back_when_rank_deficient():
    """|S| > m, 2|S| > d, given AAᵀ: a repeated row (rank A_S < m) or rows scaled over 10⁶ make G = AAᵀ −
    A_S̄A_S̄ᵀ singular or ill-conditioned; the result is exactly ``gelsy``'s, never NaN."""
    rng = np.random.default_rng(2)
    for seed in range(100):
        A = rng.standard_normal((20, 30))
        if seed % 2:
            A[1] = A[0]
        else:
            A *= np.logspace(0, -6, 20)[:, None]
        support = np.sort(rng.choice(30, size=int(rng.integers(21, 31)), replace=False))
        y = rng.standard_normal(20)
        x = least_squares_on_support(A, y, support, given_row_gram(A, True))
        gelsy = scipy.linalg.lstsq(A[:, support], y, lapack_driver="gelsy")[0]
        np.testing.assert_array_equal(x[support], gelsy)


@pytest.mark.parametrize("with_row_gram", [False, True], ids=["direct", "row_gram"])
@pytest.mark.parametrize("support_size", [10, 25])
@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_extreme_scales_fall_back_instead_of_overflowing(scale, support_size, with_row_gram):
    """AᵀA (AAᵀ for the wide support of 25 columns) under- or overflows at these scales; the pivoted QR does
    not: the solution is that of the unscaled instance (x* itself on 10 columns, the minimum-norm one on 25)."""
    rng = np.random.default_rng(1)
    unscaled = rng.standard_normal((20, 30))
    A = unscaled * scale
    x_star = np.zeros(30)
    x_star[:5] = 1.0
    support = np.arange(support_size)
    with np.errstate(all="ignore"):  # AAᵀ is inf, NaN or 0 here: the kernel must notice
        row_gram = given_row_gram(A, with_row_gram)
    x = least_squares_on_support(A, A @ x_star, support, row_gram)
    np.testing.assert_allclose(x, reference(unscaled, unscaled @ x_star, support)[0], atol=1e-10)
    if support_size <= 20:
        np.testing.assert_allclose(x, x_star, atol=1e-10)


def test_empty_support_is_zero():
    assert not least_squares_on_support(np.ones((3, 4)), np.ones(3), np.array([], dtype=int)).any()
