"""The best k-subset oracle (problems/oracle.py) against brute force by itertools.

Objectives are compared with a relative tolerance; supports only where the best subset beats the second best
by a clear margin, so no assertion hinges on a floating-point near-tie.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.optimize

from problems import LeastSquaresProblem, make_diabetes, make_logistic_regression
from problems import mixed_integer
from problems.oracle import BEST_KNOWN, EXACT, Oracle, best_subset

RTOL = 1e-9
#: Relative gap between the best and second-best subsets above which the supports must agree.
MARGIN = 1e-6


def least_squares(A: np.ndarray, y: np.ndarray) -> LeastSquaresProblem:
    return LeastSquaresProblem(name="tiny", params={}, seed=0, x_star=np.full(A.shape[1], np.nan), k_star=1, A=A, y=y)


def brute_force_least_squares(A: np.ndarray, y: np.ndarray, k: int) -> list[tuple[float, tuple[int, ...]]]:
    """(f, S) for every subset with 1 ≤ |S| ≤ k, best first. Rank-deficient A_S: singular values below 1e-8 of
    the largest are dropped, i.e. y is projected onto the span of A_S (the oracle's convention)."""
    out = []
    for size in range(1, k + 1):
        for S in itertools.combinations(range(A.shape[1]), size):
            coef = np.linalg.lstsq(A[:, S], y, rcond=1e-8)[0]
            r = A[:, S] @ coef - y
            out.append((0.5 * float(r @ r), S))
    return sorted(out)


def assert_matches(oracle: Oracle, ranked: list[tuple[float, tuple[int, ...]]], k: int, scale: float) -> None:
    """The oracle's value is the best over all |S| ≤ k; its support is the best size-k subset when that one is
    ahead of the second best size-k subset by a clear margin (exact ties arise from dependent columns)."""
    assert oracle.objective == pytest.approx(ranked[0][0], rel=RTOL, abs=RTOL * scale)
    full = [(f, S) for f, S in ranked if len(S) == min(k, len(oracle.x))]
    if len(full) > 1 and full[1][0] > full[0][0] + MARGIN * scale:
        assert tuple(oracle.support.tolist()) == full[0][1]


def check_contract(problem, oracle: Oracle, k: int) -> None:
    assert oracle.support.size <= k and np.all(np.diff(oracle.support) > 0)
    off = np.setdiff1d(np.arange(problem.d), oracle.support)
    assert np.all(oracle.x[off] == 0.0)
    assert oracle.objective == pytest.approx(problem.objective(oracle.x), rel=1e-12, abs=0)
    assert not oracle.x.flags.writeable and not oracle.support.flags.writeable


def random_design(kind: str, m: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, d))
    if kind == "duplicate":
        A[:, 3] = A[:, 1]
    elif kind == "combination":
        A[:, 5] = A[:, 0] - 2.0 * A[:, 2]
    elif kind == "zero_column":
        A[:, 4] = 0.0
    y = A[:, :3] @ np.array([1.5, -2.0, 1.0]) + 0.5 * rng.standard_normal(m)
    return A, y


@pytest.mark.parametrize("kind, m, d", [("generic", 20, 8), ("generic", 30, 12), ("duplicate", 20, 10),
                                        ("combination", 25, 10), ("zero_column", 20, 9), ("generic", 6, 10)])
def test_least_squares_oracle_equals_brute_force(kind, m, d):
    A, y = random_design(kind, m, d, seed=d + m)
    problem = least_squares(A, y)
    scale = float(y @ y)
    for k in sorted({1, 2, 3, d // 2, d - 1, d}):
        oracle = best_subset(problem, k)
        assert oracle.how == EXACT and oracle.subsets == math.comb(d, k)
        check_contract(problem, oracle, k)
        assert_matches(oracle, brute_force_least_squares(A, y, k), k, scale)


def test_separated_best_subset_is_found():
    # y built from columns 0, 2, 5 with little noise: the best 3-subset is far ahead of any other.
    rng = np.random.default_rng(11)
    A = rng.standard_normal((40, 10))
    y = A[:, [0, 2, 5]] @ np.array([3.0, -2.0, 2.5]) + 0.01 * rng.standard_normal(40)
    ranked = brute_force_least_squares(A, y, 3)
    assert ranked[1][0] > 10 * ranked[0][0]
    oracle = best_subset(least_squares(A, y), 3)
    assert oracle.support.tolist() == [0, 2, 5] and ranked[0][1] == (0, 2, 5)


def test_rank_deficient_subset_is_scored_by_its_span():
    # Columns 1 and 3 are identical, y lies in their span plus column 0: {0, 1, 3} reaches the same value as
    # {0, 1}, and the oracle never returns a point with huge opposite coefficients on the duplicate pair.
    A, _ = random_design("duplicate", 20, 6, seed=4)
    y = A[:, 0] - A[:, 1] + 0.1 * np.random.default_rng(4).standard_normal(20)
    problem = least_squares(A, y)
    oracle = best_subset(problem, 6)
    assert oracle.objective == pytest.approx(brute_force_least_squares(A, y, 6)[0][0], rel=RTOL)
    assert np.max(np.abs(oracle.x)) < 10.0


def test_k_above_d_is_the_unconstrained_fit():
    A, y = random_design("generic", 15, 5, seed=2)
    problem = least_squares(A, y)
    oracle = best_subset(problem, 9)
    assert oracle.support.tolist() == [0, 1, 2, 3, 4] and oracle.how == EXACT
    r = A @ np.linalg.lstsq(A, y, rcond=None)[0] - y
    assert oracle.objective == pytest.approx(0.5 * r @ r, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_known_beyond_the_limit_is_never_below_exact(seed):
    A, y = random_design("generic", 30, 12, seed=seed)
    problem = least_squares(A, y)
    exact = best_subset(problem, 4)
    heuristic = best_subset(problem, 4, max_subsets=100, time_limit=0)  # C(12, 4) = 495 > 100; no branch and bound
    assert exact.how == EXACT and heuristic.how == BEST_KNOWN
    assert heuristic.objective >= exact.objective * (1 - 1e-12)
    assert 0 < heuristic.subsets
    check_contract(problem, heuristic, 4)


@pytest.mark.parametrize("k", [3, 5])
def test_diabetes_exact_oracle_equals_brute_force(k):
    problem = make_diabetes(k_star=k)
    oracle = best_subset(problem, k)
    assert oracle.how == EXACT and oracle.subsets == math.comb(10, k)
    check_contract(problem, oracle, k)
    ranked = [r for r in brute_force_least_squares(problem.A, problem.y, k) if len(r[1]) == k]
    assert oracle.objective == pytest.approx(ranked[0][0], rel=RTOL)
    assert ranked[1][0] > ranked[0][0] * (1 + MARGIN)  # well separated on these data
    assert tuple(oracle.support.tolist()) == ranked[0][1]


def test_diabetes_quadratic_k3_against_batched_normal_equations():
    # 41 664 subsets: brute force by one batched solve of the normal equations (independent of the oracle's
    # recursion), then the winner refitted by lstsq.
    problem = make_diabetes(k_star=3, features="quadratic")
    A, y = problem.A, problem.y
    G, b = A.T @ A, A.T @ y
    subsets = np.array(list(itertools.combinations(range(64), 3)))
    blocks, rhs = G[subsets[:, :, None], subsets[:, None, :]], b[subsets]
    explained = np.einsum("bs,bs->b", rhs, np.linalg.solve(blocks, rhs[..., None])[..., 0])
    order = np.argsort(-explained)
    assert explained[order[0]] - explained[order[1]] > MARGIN * float(y @ y)
    oracle = best_subset(problem, 3)
    assert oracle.support.tolist() == subsets[order[0]].tolist()
    assert oracle.objective == pytest.approx(0.5 * (y @ y - explained[order[0]]), rel=1e-8)
    check_contract(problem, oracle, 3)
    assert best_subset(problem, 3, max_subsets=1000).objective == pytest.approx(oracle.objective, rel=1e-12)


def brute_force_logistic(problem, k: int) -> list[tuple[float, tuple[int, ...]]]:
    """Every k-subset fitted by BFGS (scipy), independently of the oracle's Newton fits."""
    out = []
    for S in itertools.combinations(range(problem.d), k):
        idx = list(S)

        def restricted(w):
            x = np.zeros(problem.d)
            x[idx] = w
            return problem.objective(x), problem.gradient(x)[idx]

        fit = scipy.optimize.minimize(restricted, np.zeros(k), jac=True, method="BFGS", options={"gtol": 1e-11})
        out.append((float(fit.fun), S))
    return sorted(out)


def test_logistic_oracle_equals_brute_force():
    problem = make_logistic_regression(n=80, d=7, k_star=3, l2=1e-2, labels="bernoulli", seed=5)
    ranked = brute_force_logistic(problem, 2)
    oracle = best_subset(problem, 2)
    assert oracle.how == EXACT and oracle.subsets == math.comb(7, 2)
    check_contract(problem, oracle, 2)
    assert oracle.objective == pytest.approx(ranked[0][0], rel=1e-8)
    if ranked[1][0] > ranked[0][0] * (1 + MARGIN):
        assert tuple(oracle.support.tolist()) == ranked[0][1]
    gradient = problem.gradient(oracle.x)[oracle.support]
    assert np.linalg.norm(gradient) < 1e-8  # a stationary point on its support

    heuristic = best_subset(problem, 2, max_subsets=5)
    assert heuristic.how == BEST_KNOWN and heuristic.objective >= oracle.objective * (1 - 1e-10)
    check_contract(problem, heuristic, 2)
    assert best_subset(problem, 2, max_fits=5).how == BEST_KNOWN


def test_determinism_and_cache():
    A, y = random_design("generic", 25, 10, seed=9)
    problem = least_squares(A, y)
    first = best_subset(problem, 3)
    assert best_subset(problem, 3) is first  # cached per instance
    assert best_subset(problem, 3, max_subsets=50) is not first  # another key
    again = best_subset(least_squares(A, y), 3)  # a fresh, identical instance: same result bit for bit
    assert again is not first and again.objective == first.objective
    assert np.array_equal(again.support, first.support) and np.array_equal(again.x, first.x)
    heuristic = [best_subset(least_squares(A, y), 3, max_subsets=10, time_limit=0) for _ in range(2)]
    assert heuristic[0].objective == heuristic[1].objective
    assert np.array_equal(heuristic[0].support, heuristic[1].support)


@pytest.mark.parametrize("kwargs, word", [(dict(k=0), "k="), (dict(k=2.0), "k="), (dict(k=2, max_subsets=0), "max_subsets"),
                                          (dict(k=2, max_fits=-1), "max_fits")])
def test_bad_arguments_raise_one_line(kwargs, word):
    problem = least_squares(*random_design("generic", 10, 4, seed=0))
    with pytest.raises(ValueError) as error:
        best_subset(problem, **kwargs)
    assert word in str(error.value) and "\n" not in str(error.value)


# ------------------------------------------------------------------ the branch-and-bound certificate (gurobipy)
def certifier_works() -> bool:
    """gurobipy imports and its licence solves a one-variable model (the pip wheel's licence has an expiry)."""
    if mixed_integer.solver_name() is None:
        return False
    return mixed_integer.certify_least_squares(np.ones((2, 1)), np.ones(2), 1, np.array([0])) is not None


needs_certifier = pytest.mark.skipif(not certifier_works(),
                                     reason="optional extra obsbench[oracle] (gurobipy) missing or unlicensed")


@needs_certifier
def test_branch_and_bound_equals_enumeration_over_many_instances():
    # 150 noisy correlated designs, each small enough to enumerate: forcing branch and bound (max_subsets=1)
    # must give the enumeration's value every time, certified.
    for seed in range(150):
        rng = np.random.default_rng(seed)
        d = int(rng.integers(8, 15))
        rho = float(rng.uniform(0.0, 0.95))
        A = rng.standard_normal((30, d)) @ np.linalg.cholesky(rho ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))).T
        A *= rng.uniform(0.1, 10.0, size=d)  # columns of any scale
        y = A[:, :4] @ rng.standard_normal(4) + rng.uniform(0.01, 2.0) * rng.standard_normal(30)
        problem = least_squares(A, y)
        k = int(rng.integers(1, 6))
        exact = best_subset(problem, k)
        certified = best_subset(problem, k, max_subsets=1)
        assert certified.how == EXACT and certified.method.startswith("mixed-integer"), seed
        assert certified.objective == pytest.approx(exact.objective, rel=1e-8, abs=1e-12 * float(y @ y)), seed
        assert certified.lower_bound <= certified.objective
        check_contract(problem, certified, k)


@needs_certifier
def test_branch_and_bound_certifies_beyond_enumeration():
    # C(40, 6) = 3.8 million subsets on a correlated noisy design: certified in well under a second, never
    # worse than the heuristic, and a noiseless y gives f_best at rounding level.
    rng = np.random.default_rng(3)
    d = 40
    A = rng.standard_normal((80, d)) @ np.linalg.cholesky(0.7 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))).T
    truth = np.zeros(d)
    truth[[2, 9, 17, 25, 31, 38]] = rng.standard_normal(6) + np.sign(rng.standard_normal(6))
    problem = least_squares(A, A @ truth + 0.3 * rng.standard_normal(80))
    certified = best_subset(problem, 6, max_subsets=1000)
    heuristic = best_subset(problem, 6, max_subsets=1000, time_limit=0)
    assert certified.how == EXACT and heuristic.how == BEST_KNOWN
    assert certified.objective <= heuristic.objective * (1 + 1e-12)
    noiseless = best_subset(least_squares(A, A @ truth), 6, max_subsets=1000)
    assert noiseless.how == EXACT and noiseless.support.tolist() == [2, 9, 17, 25, 31, 38]
    assert noiseless.objective <= 1e-20 * float(truth @ A.T @ A @ truth)


@needs_certifier
def test_branch_and_bound_out_of_time_is_best_known_with_a_lower_bound():
    problem = make_diabetes(k_star=8, features="quadratic")
    oracle = best_subset(problem, 8, max_subsets=1, time_limit=0.05)
    assert oracle.how == BEST_KNOWN and "time limit" in oracle.method
    assert oracle.lower_bound <= oracle.objective


def test_without_the_certifier_the_heuristic_is_best_known(monkeypatch):
    monkeypatch.setattr(mixed_integer, "solver_name", lambda: None)
    A, y = random_design("generic", 30, 12, seed=5)
    oracle = best_subset(least_squares(A, y), 4, max_subsets=100)
    assert oracle.how == BEST_KNOWN and oracle.method == "swap search" and oracle.lower_bound == -np.inf


@pytest.mark.parametrize("certifier", [True, False])
def test_reference_modes_beyond_enumeration(tmp_path, monkeypatch, certifier):
    from types import SimpleNamespace

    from experiments.store.reference import reference_for

    if certifier and not certifier_works():
        pytest.skip("optional extra obsbench[oracle] (gurobipy) missing or unlicensed")
    if not certifier:
        monkeypatch.setattr(mixed_integer, "solver_name", lambda: None)
    A, y = random_design("generic", 30, 12, seed=6)
    problem = least_squares(A, y)  # truth unknown
    solver = SimpleNamespace(k_=4, needs_k=True)
    common = dict(root=tmp_path, problem_config={"name": "tiny", "seed": 6}, seed=6, max_subsets=100)
    auto = reference_for(problem, solver, mode="auto", **common)
    exact = reference_for(problem, solver, mode="exact", **common)
    assert auto.how == (EXACT if certifier else BEST_KNOWN)
    assert (exact is not None) == certifier
    enumerated = best_subset(problem, 4).objective
    assert auto.objective >= enumerated * (1 - 1e-12)
    if certifier:
        assert auto.objective == pytest.approx(enumerated, rel=1e-8)
    assert len(list((tmp_path / "oracles").glob("*.json"))) == 1  # one cache file, read back by the second call
