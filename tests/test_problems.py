"""Problem generators: determinism, exact constructions, validation, objective derivatives."""

from __future__ import annotations

import numpy as np
import pytest

from problems import make_compressed_sensing, make_least_squares, make_paper_gaussian_prior
from problems.sensing import MATRIX_ENSEMBLES, SIGNAL_ENSEMBLES


@pytest.mark.parametrize("matrix", MATRIX_ENSEMBLES)
@pytest.mark.parametrize("signal", SIGNAL_ENSEMBLES)
def test_same_seed_same_instance_bit_for_bit(matrix, signal):
    a = make_compressed_sensing(m=20, d=40, k_star=4, matrix=matrix, signal=signal, rho=0.3, snr_db=20, seed=7)
    b = make_compressed_sensing(m=20, d=40, k_star=4, matrix=matrix, signal=signal, rho=0.3, snr_db=20, seed=7)
    c = make_compressed_sensing(m=20, d=40, k_star=4, matrix=matrix, signal=signal, rho=0.3, snr_db=20, seed=8)
    assert np.array_equal(a.A, b.A) and np.array_equal(a.y, b.y) and np.array_equal(a.x_star, b.x_star)
    assert not np.array_equal(a.y, c.y)
    assert np.count_nonzero(a.x_star) == 4


def test_instances_are_immutable():
    p = make_compressed_sensing(m=10, d=20, k_star=2, seed=0)
    with pytest.raises(ValueError):
        p.A[0, 0] = 1.0
    with pytest.raises(AttributeError):
        p.k_star = 3


@pytest.mark.parametrize("spectrum", ["geometric", "linear", "two_level"])
@pytest.mark.parametrize("kappa", [1.0, 10.0, 1e4])
def test_regression_condition_number_is_exact(kappa, spectrum):
    p = make_least_squares(n=80, d=40, k_star=5, kappa=kappa, spectrum=spectrum, seed=1)
    eig = np.linalg.eigvalsh(p.A.T @ p.A)
    assert eig[-1] / eig[0] == pytest.approx(kappa, rel=1e-8)


def test_partial_dct_rows_are_orthonormal():
    p = make_compressed_sensing(m=32, d=64, k_star=3, matrix="dct", seed=2)
    assert np.allclose(p.A @ p.A.T, np.eye(32), atol=1e-12)


def test_toeplitz_column_correlation_matches_rho():
    rho = 0.6
    p = make_compressed_sensing(m=20000, d=6, k_star=1, matrix="toeplitz", rho=rho, seed=3)
    corr = np.corrcoef(p.A, rowvar=False)
    expected = rho ** np.abs(np.subtract.outer(np.arange(6), np.arange(6)))
    assert np.allclose(corr, expected, atol=0.03)


def test_gaussian_columns_have_unit_norm_in_expectation_and_normalisation_is_exact():
    p = make_compressed_sensing(m=400, d=50, k_star=3, seed=4)
    assert np.mean(np.linalg.norm(p.A, axis=0) ** 2) == pytest.approx(1.0, rel=0.05)
    q = make_compressed_sensing(m=40, d=50, k_star=3, matrix="rademacher", normalize_columns=True, seed=4)
    assert np.allclose(np.linalg.norm(q.A, axis=0), 1.0)


def test_snr_sets_noise_level():
    p = make_compressed_sensing(m=5000, d=100, k_star=10, snr_db=20.0, seed=5)
    clean = p.A @ p.x_star
    snr = 10 * np.log10(np.sum(clean**2) / np.sum((p.y - clean) ** 2))
    assert snr == pytest.approx(20.0, abs=0.3)


def test_least_squares_derivatives_match_finite_differences():
    p = make_compressed_sensing(m=15, d=10, k_star=2, snr_db=10, seed=6)
    x = np.random.default_rng(0).standard_normal(10)
    eps = 1e-6
    numeric = np.array([(p.objective(x + eps * e) - p.objective(x - eps * e)) / (2 * eps) for e in np.eye(10)])
    assert np.allclose(numeric, p.gradient(x), atol=1e-6)
    assert np.allclose(p.hessian(x), p.A.T @ p.A)
    assert np.allclose(p.hvp(x, x), p.hessian(x) @ x)
    assert p.smoothness() == pytest.approx(np.linalg.eigvalsh(p.A.T @ p.A)[-1])


def test_paper_problem_matches_the_paper_settings():
    p = make_paper_gaussian_prior(seed=0)
    assert (p.d, p.k_star, p.A.shape) == (128, 16, (256, 128))
    assert np.count_nonzero(p.x_star) == 16
    assert np.all(np.abs(p.x0) <= 1 / np.sqrt(128))
    assert np.allclose(p.y, p.A @ p.x_star)


@pytest.mark.parametrize("kwargs, word", [
    (dict(m=0), "m=0"), (dict(k_star=0), "k_star=0"), (dict(k_star=300), "k_star=300"),
    (dict(m=3, k_star=5), "exceeds m=3"), (dict(rho=1.0, matrix="toeplitz"), "rho=1.0"),
    (dict(matrix="cauchy"), "matrix='cauchy'"), (dict(signal="laplace"), "signal='laplace'"),
    (dict(noise_std=-1.0), "noise_std=-1.0"),
])
def test_invalid_sensing_parameters_raise_one_line_errors(kwargs, word):
    with pytest.raises(ValueError) as info:
        make_compressed_sensing(**{"m": 20, "d": 40, "k_star": 4, **kwargs})
    assert word in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs", [dict(n=10, d=20), dict(kappa=0.5), dict(k_star=0)])
def test_invalid_regression_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        make_least_squares(**{"n": 40, "d": 20, "k_star": 3, **kwargs})


def test_mismatched_shapes_and_nan_data_are_refused():
    from problems.base import LeastSquaresProblem

    A, x = np.ones((4, 3)), np.array([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="y has shape"):
        LeastSquaresProblem(name="t", params={}, seed=0, x_star=x, k_star=1, A=A, y=np.ones(5))
    with pytest.raises(ValueError, match="columns"):
        LeastSquaresProblem(name="t", params={}, seed=0, x_star=np.ones(4), k_star=1, A=A, y=np.ones(4))
    bad = A.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        LeastSquaresProblem(name="t", params={}, seed=0, x_star=x, k_star=1, A=bad, y=np.ones(4))
