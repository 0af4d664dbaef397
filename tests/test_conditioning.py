"""Constants of an instance: exact values against brute force, sampled values on the right side of the truth,
analytic Hessian-Lipschitz bounds never beaten by sampling, labels, determinism and caching."""

from __future__ import annotations

import gc
import itertools

import numpy as np
import pytest

from problems import LeastSquaresProblem, make_compressed_sensing, make_least_squares
from problems import conditioning
from problems.conditioning import instance_constants, local_constants_of, sampled_hessian_lipschitz
from problems.sparse_spectra import (logistic_hessian_lipschitz_bound, mutual_coherence, restricted_smoothness,
                                     restricted_strong_convexity, rip_constant, sparse_spectrum)
from problems.nonquadratic import make_logistic_regression, make_quartic_sensing

HOWS = {"exact", "upper bound", "lower bound", "sampled lower bound", "sampled upper bound", "estimate"}


def brute_force_rip(A: np.ndarray, s: int) -> float:
    """δ_s = max over |S| = s of ‖A_SᵀA_S − I‖₂, by definition."""
    return max(np.linalg.norm(A[:, S].T @ A[:, S] - np.eye(s), 2)
               for S in map(list, itertools.combinations(range(A.shape[1]), s)))


@pytest.mark.parametrize("seed", range(6))
def test_exact_rip_constant_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    m, d = rng.integers(4, 9), rng.integers(5, 9)
    A = rng.standard_normal((m, d)) / np.sqrt(m)
    for s in range(1, d + 1):
        entry = rip_constant(A, s)
        assert entry["how"] == "exact"
        assert entry["value"] == pytest.approx(brute_force_rip(A, s), abs=1e-12)
        assert entry["upper_bound"] == pytest.approx(entry["value"], abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_sampled_rip_is_a_lower_bound_and_certified_bound_an_upper_bound(seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((8, 12)) / np.sqrt(8)
    for s in (2, 3, 5):
        exact = rip_constant(A, s)
        sampled = rip_constant(A, s, max_supports=1, n_samples=20, rng=seed)
        assert exact["how"] == "exact" and sampled["how"] == "sampled lower bound"
        assert sampled["value"] <= exact["value"] + 1e-12
        assert sampled["upper_bound"] >= exact["value"] - 1e-12
        assert sampled["lambda_min"] >= exact["lambda_min"] - 1e-12
        assert sampled["lambda_max"] <= exact["lambda_max"] + 1e-12


def test_local_search_finds_the_exact_extremes_on_most_small_instances():
    hits = 0
    for seed in range(10):
        G = np.cov(np.random.default_rng(seed).standard_normal((20, 14)), rowvar=False)
        exact, sampled = sparse_spectrum(G, 4), sparse_spectrum(G, 4, max_supports=1, n_samples=10, rng=seed)
        hits += np.isclose(sampled.lambda_max, exact.lambda_max) and np.isclose(sampled.lambda_min, exact.lambda_min)
    assert hits >= 6


def test_rip_beyond_d_is_the_global_constant():
    A = np.random.default_rng(0).standard_normal((5, 4))
    w = np.linalg.eigvalsh(A.T @ A)
    entry = rip_constant(A, 9)
    assert entry["how"] == "exact" and entry["sparsity"] == 4
    assert entry["value"] == pytest.approx(max(w[-1] - 1, 1 - w[0]))


def test_mutual_coherence():
    assert mutual_coherence(np.eye(5)) == 0.0
    A = np.random.default_rng(1).standard_normal((6, 5))
    normalised = A / np.linalg.norm(A, axis=0)
    brute = max(abs(normalised[:, i] @ normalised[:, j]) for i in range(5) for j in range(5) if i != j)
    assert mutual_coherence(A) == pytest.approx(brute)
    assert mutual_coherence(np.column_stack([A[:, 0], -3 * A[:, 0]])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="nonzero"):
        mutual_coherence(np.zeros((3, 2)))


def test_restricted_smoothness_and_strong_convexity_by_enumeration():
    rng = np.random.default_rng(2)
    B = rng.standard_normal((9, 7))
    H = B.T @ B
    for k in range(1, 7):
        subsets = list(map(list, itertools.combinations(range(7), 7 - k)))
        entry = restricted_smoothness(H, k)
        assert entry["how"] == "exact"
        assert entry["value"] == pytest.approx(max(np.linalg.eigvalsh(H[np.ix_(S, S)])[-1] for S in subsets))
        alpha = restricted_strong_convexity(H, 7 - k)
        assert alpha["value"] == pytest.approx(min(np.linalg.eigvalsh(H[np.ix_(S, S)])[0] for S in subsets))
    assert restricted_smoothness(H, 7) == {"value": 0.0, "how": "exact", "sparsity": 0}


def test_instance_constants_are_labelled_cached_and_leave_the_instance_unchanged():
    problem = make_least_squares(n=30, d=12, k_star=3, kappa=5.0, seed=3)
    before = {name: getattr(problem, name).tobytes() for name in ("A", "y", "x_star", "x0")}
    constants = problem.constants()
    assert {"mu", "L", "condition_number", "L_restricted", "restricted_condition_number", "M", "delta_3k",
            "delta_k_star", "coherence", "lambda_min_true_support"} <= constants.keys()
    assert all(entry["how"] in HOWS for entry in constants.values())
    assert constants["mu"]["value"] == pytest.approx(0.2) and constants["L"]["value"] == pytest.approx(1.0)
    assert constants["M"] == {"value": 0.0, "how": "exact"}
    assert problem.constants() is constants  # the cache returns the same object, without recomputing
    assert {name: getattr(problem, name).tobytes() for name in before} == before
    assert instance_constants(problem, k=6)["delta_3k"]["sparsity"] == 12


def test_sampled_constants_are_deterministic_and_labelled():
    first, second = (make_compressed_sensing(m=40, d=60, k_star=3, seed=7).constants() for _ in range(2))
    assert first == second
    assert first["delta_3k"]["how"] == "sampled lower bound"
    assert first["delta_3k_upper"]["value"] >= first["delta_3k"]["value"]
    assert first["lambda_min_3k"]["how"] == "sampled upper bound"
    assert first["lambda_min_3k_lower"]["value"] <= first["lambda_min_3k"]["value"]


def test_cache_entries_die_with_the_problem():
    import weakref

    problem = make_least_squares(n=20, d=6, k_star=2, seed=0)
    problem.constants()
    assert problem.derived(("spectral",), lambda: None) is not None  # cached in the instance itself
    alive = weakref.ref(problem)
    del problem
    gc.collect()
    assert alive() is None  # nothing global holds the instance (or its cached constants)


@pytest.mark.parametrize("seed", range(3))
def test_logistic_hessian_lipschitz_bound_is_not_beaten_by_finite_differences(seed):
    problem = make_logistic_regression(n=60, d=8, k_star=2, seed=seed)
    k = 2
    sparsity = 2 * k + problem.k_star
    bound = logistic_hessian_lipschitz_bound(problem.A, sparsity)
    sampled = sampled_hessian_lipschitz(problem, sparsity, n_pairs=40, rng=seed)
    assert bound["how"] == "upper bound" and sampled["how"] == "sampled lower bound"
    assert 0 < sampled["value"] <= bound["value"]


def test_logistic_hessian_lipschitz_bound_against_pairs_anywhere():
    rng = np.random.default_rng(0)
    problem = make_logistic_regression(n=50, d=6, k_star=2, seed=1)
    bound = logistic_hessian_lipschitz_bound(problem.A)["value"]
    for _ in range(30):
        x, x2 = rng.standard_normal((2, 6)) * rng.uniform(0.1, 3.0)
        ratio = np.linalg.norm(problem.hessian(x) - problem.hessian(x2), 2) / np.linalg.norm(x - x2)
        assert ratio <= bound


@pytest.mark.parametrize("seed", range(4))
def test_polynomial_local_constants_hold_on_their_ball(seed):
    rng = np.random.default_rng(seed)
    problem = make_quartic_sensing(m=9, d=6, k_star=2, ridge=0.5, cubic=0.8, quartic=2.0, seed=seed)
    k, radius = 3, 0.3
    local = local_constants_of(problem, k, radius)
    r = local["M_upper"]["radius"]
    assert r >= radius
    sampled = sampled_hessian_lipschitz(problem, 2 * k + 2, n_pairs=20, rng=seed, radius=r)
    assert sampled["value"] <= local["M_upper"]["value"]
    subsets = list(map(list, itertools.combinations(range(6), 6 - k)))
    for _ in range(20):
        u = rng.standard_normal(6)
        x = problem.x_star + r * rng.uniform() * u / np.linalg.norm(u)
        H = problem.hessian(x)
        assert np.linalg.eigvalsh(H)[0] >= local["mu_lower"]["value"] - 1e-12
        largest = max(np.linalg.eigvalsh(H[np.ix_(S, S)])[-1] for S in subsets)
        assert largest <= local["L_restricted_upper"]["value"] + 1e-12


def test_logistic_local_strong_convexity_holds_on_its_ball():
    rng = np.random.default_rng(5)
    problem = make_logistic_regression(n=80, d=6, k_star=2, seed=5)
    local = local_constants_of(problem, 2, 0.5)
    for _ in range(20):
        u = rng.standard_normal(6)
        x = problem.x_star + 0.5 * rng.uniform() * u / np.linalg.norm(u)
        assert np.linalg.eigvalsh(problem.hessian(x))[0] >= local["mu_lower"]["value"] - 1e-12
        assert np.linalg.eigvalsh(problem.hessian(x))[-1] <= local["L_restricted_upper"]["value"] + 1e-12


def test_non_quadratic_constants_are_estimates_or_certified_on_the_start_ball():
    problem = make_quartic_sensing(m=12, d=8, k_star=2, init_radius=0.2, seed=1)
    constants = problem.constants()
    assert constants["mu"]["how"] == "estimate" and constants["M"]["how"] == "sampled lower bound"
    assert constants["M_upper"]["how"] == "upper bound" and constants["M_upper"]["radius"] >= 0.2
    assert constants["mu_lower"]["value"] <= constants["mu"]["value"]


def test_least_squares_problem_without_signal_support_is_handled():
    A = np.random.default_rng(0).standard_normal((5, 4))
    x_star = np.zeros(4)
    x_star[1] = 1.0
    problem = LeastSquaresProblem(name="tiny", params={}, seed=0, x_star=x_star, k_star=1, A=A, y=A @ x_star)
    constants = problem.constants()
    assert constants["lambda_min_true_support"]["value"] == pytest.approx(A[:, 1] @ A[:, 1])
