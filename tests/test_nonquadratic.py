"""The non-quadratic problems: derivatives against finite differences, what x_star is, determinism,
parameter validation."""

from __future__ import annotations

import numpy as np
import pytest

from problems import LogisticProblem, PolynomialSensingProblem, make_logistic_regression, make_quartic_sensing

PROBLEMS = {
    "logistic-soft": lambda seed: make_logistic_regression(n=60, d=12, k_star=3, seed=seed),
    "logistic-bernoulli": lambda seed: make_logistic_regression(n=40, d=30, k_star=4, l2=0.1, labels="bernoulli",
                                                                seed=seed),
    "quartic": lambda seed: make_quartic_sensing(m=10, d=15, k_star=3, seed=seed),
    "quartic-rademacher": lambda seed: make_quartic_sensing(m=20, d=12, k_star=2, matrix="rademacher", ridge=0.0,
                                                            cubic=0.0, quartic=2.0, seed=seed),
}


def central_difference(fun, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Columns ∂fun/∂x_j by central differences (fun scalar- or vector-valued)."""
    columns = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        columns.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2 * h))
    return np.stack(columns, axis=-1)


@pytest.mark.parametrize("key", list(PROBLEMS))
def test_gradient_hessian_and_hvp_match_finite_differences(key):
    problem = PROBLEMS[key](0)
    rng = np.random.default_rng(1)
    for x in (problem.x_star + 0.3 * rng.standard_normal(problem.d), rng.standard_normal(problem.d)):
        g, H = problem.gradient(x), problem.hessian(x)
        np.testing.assert_allclose(g, central_difference(problem.objective, x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(H, central_difference(problem.gradient, x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(H, H.T, atol=1e-12)
        v = rng.standard_normal(problem.d)
        np.testing.assert_allclose(problem.hvp(x, v), H @ v, atol=1e-10)
        np.testing.assert_allclose(problem.sample_gradient(x, np.arange(problem.n_samples)), g, atol=1e-10)
    assert problem.hessian_is_constant is False and "finite_sum" in problem.capabilities


@pytest.mark.parametrize("key", list(PROBLEMS))
def test_minibatch_gradients_are_unbiased(key):
    problem = PROBLEMS[key](2)
    x = np.random.default_rng(3).standard_normal(problem.d)
    n = problem.n_samples
    # the average over the n disjoint singleton batches is exactly the full gradient
    mean = np.mean([problem.sample_gradient(x, np.array([i])) for i in range(n)], axis=0)
    np.testing.assert_allclose(mean, problem.gradient(x), atol=1e-10)


@pytest.mark.parametrize("key", list(PROBLEMS))
def test_same_seed_same_instance(key):
    a, b, c = PROBLEMS[key](5), PROBLEMS[key](5), PROBLEMS[key](6)
    for name in ("A", "y", "x_star", "x0"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.A, c.A)
    assert not a.A.flags.writeable and not a.x_star.flags.writeable


def test_noiseless_logistic_x_star_is_the_sparse_unconstrained_minimiser():
    problem = make_logistic_regression(n=100, d=20, k_star=4, scale=3.0, seed=0)
    assert isinstance(problem, LogisticProblem)
    assert problem.x_star_kind == "unconstrained minimiser"
    assert np.count_nonzero(problem.x_star) == problem.k_star == 4
    assert np.linalg.norm(problem.x_star) == pytest.approx(3.0)
    assert np.linalg.norm(problem.gradient(problem.x_star)) < 1e-14
    assert np.linalg.eigvalsh(problem.hessian(problem.x_star))[0] > 0


def test_regularised_logistic_x_star_is_the_minimiser_on_the_generating_support():
    problem = make_logistic_regression(n=80, d=30, k_star=5, l2=0.05, labels="bernoulli", seed=1)
    assert problem.x_star_kind == "minimiser on the generating support"
    support = problem.true_support
    g = problem.gradient(problem.x_star)
    assert support.size == 5
    assert np.linalg.norm(g[support]) < 1e-12
    assert np.linalg.norm(g) > 1e-3  # the unconstrained minimiser is not sparse


def test_logistic_smoothness_bounds_the_hessian_everywhere():
    problem = make_logistic_regression(n=50, d=10, k_star=2, l2=0.1, seed=0)
    rng = np.random.default_rng(0)
    top = max(np.linalg.eigvalsh(problem.hessian(3 * rng.standard_normal(10)))[-1] for _ in range(20))
    assert top <= problem.smoothness() + 1e-12


def test_quartic_problem_has_x_star_as_unique_strongly_convex_minimiser():
    problem = make_quartic_sensing(m=20, d=40, k_star=4, ridge=1.0, cubic=1.0, quartic=1.0, seed=0)
    assert isinstance(problem, PolynomialSensingProblem)
    assert np.count_nonzero(problem.x_star) == 4
    np.testing.assert_array_equal(problem.gradient(problem.x_star), 0.0)
    rng = np.random.default_rng(0)
    mu = 1.0 - 1.0 / 3.0  # ridge − cubic²/(3·quartic)
    for _ in range(10):
        x = problem.x_star + rng.standard_normal(40) * rng.uniform(0.1, 10)
        assert np.linalg.eigvalsh(problem.hessian(x))[0] >= mu - 1e-9
        assert problem.objective(x) > problem.objective(problem.x_star)


@pytest.mark.parametrize("make", [
    lambda r: make_logistic_regression(n=60, d=12, k_star=3, init_radius=r, seed=0),
    lambda r: make_quartic_sensing(m=10, d=15, k_star=3, init_radius=r, seed=0),
])
def test_init_radius_places_x0_at_that_distance_without_changing_the_instance(make):
    near, default = make(0.25), make(None)
    assert np.linalg.norm(near.x0 - near.x_star) == pytest.approx(0.25)
    np.testing.assert_array_equal(default.x0, 0.0)
    np.testing.assert_array_equal(near.x_star, default.x_star)
    np.testing.assert_array_equal(near.A, default.A)


@pytest.mark.parametrize("params", [
    dict(n=0), dict(d=0), dict(k_star=0), dict(k_star=13), dict(l2=-1.0), dict(labels="hard"),
    dict(scale=0.0), dict(labels="bernoulli"), dict(n=10), dict(init_radius=-1.0), dict(l2=float("nan")),
])
def test_logistic_generator_refuses_invalid_parameters(params):
    base = dict(n=60, d=12, k_star=3)
    with pytest.raises(ValueError):
        make_logistic_regression(**{**base, **params})


@pytest.mark.parametrize("params", [
    dict(m=0), dict(k_star=0), dict(k_star=16), dict(matrix="sparse"), dict(signal="laplace"),
    dict(ridge=-1.0), dict(quartic=-1.0), dict(cubic=2.0), dict(cubic=1.0, quartic=0.0), dict(ridge=0.0),
    dict(init_radius=float("inf")),
])
def test_quartic_generator_refuses_invalid_parameters(params):
    base = dict(m=10, d=15, k_star=3)
    with pytest.raises(ValueError):
        make_quartic_sensing(**{**base, **params})
