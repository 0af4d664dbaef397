"""Known-answer and theory tests of the I-OBS family (Wu et al. 2024): Lemma 2, the WoodFisher and OBC special
cases, Topk-I-OBS's one-step / damped / quadratic behaviour, and the stochastic variant."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pytest

import solvers.iobs as iobs
from problems import (Problem, make_compressed_sensing, make_least_squares, make_logistic_regression,
                      make_paper_gaussian_prior, make_quartic_sensing)
from solvers import SolverConfigError, make_solver


@dataclass(frozen=True, eq=False)
class QuadraticModel(Problem):
    """f(θ) = gᵀ(θ − c) + ½(θ − c)ᵀH(θ − c) with c = x0: the local model of Algorithm 1 as a problem."""

    H: np.ndarray = field(default=None)  # type: ignore[assignment]
    g: np.ndarray = field(default=None)  # type: ignore[assignment]

    hessian_is_constant: ClassVar[bool] = True

    def objective(self, x: np.ndarray) -> float:
        v = x - self.x0
        return float(self.g @ v + 0.5 * v @ self.H @ v)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.g + self.H @ (x - self.x0)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return self.H


def quadratic_model(H: np.ndarray, centre: np.ndarray, g: np.ndarray | None = None) -> QuadraticModel:
    g = np.zeros_like(centre) if g is None else g
    x_min = centre - np.linalg.solve(H, g)
    return QuadraticModel(name="model", params={}, seed=0, x_star=x_min, k_star=int(np.count_nonzero(x_min)),
                          x0=centre, H=H, g=g)


def random_pd(d: int, rng: np.random.Generator) -> np.ndarray:
    B = rng.standard_normal((d + 2, d))
    return B.T @ B + 0.1 * np.eye(d)


def one_step(name: str, problem: Problem, **params) -> np.ndarray:
    result = make_solver(name, max_iter=1, **params).run(problem)
    assert result.status in ("ok", "max_iter"), result.message
    return result.x


def brute_force_model_minimiser(problem: QuadraticModel, k: int) -> tuple[float, np.ndarray]:
    """min over all |Q| = k of the model restricted to supp ⊆ Q, each solved by its normal equations."""
    H, rhs = problem.H, problem.H @ problem.x0 - problem.g
    best = (np.inf, None)
    for Q in itertools.combinations(range(problem.d), k):
        Q = list(Q)
        x = np.zeros(problem.d)
        x[Q] = np.linalg.solve(H[np.ix_(Q, Q)], rhs[Q])
        best = min(best, (problem.objective(x), x), key=lambda pair: pair[0])
    return best


@pytest.mark.parametrize("d, k", [(6, 5), (8, 4), (10, 3), (10, 7)])
def test_exact_iobs_solves_the_sparse_quadratic_model(d, k):
    """Lemma 2: one Option-2 step is the exact minimiser of eq. 8 (both enumeration branches)."""
    rng = np.random.default_rng(100 * d + k)
    for _ in range(3):
        problem = quadratic_model(random_pd(d, rng), rng.standard_normal(d), rng.standard_normal(d))
        x = one_step("iobs_exact", problem, k=k)
        value, x_brute = brute_force_model_minimiser(problem, k)
        assert np.count_nonzero(x) <= k
        assert problem.objective(x) == pytest.approx(value, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(x, x_brute, atol=1e-10)


def test_exact_iobs_with_zero_gradient_and_one_pruned_weight_is_woodfisher():
    """∇f = 0, k = d − 1: prune argmin θᵢ²/[H⁻¹]ᵢᵢ and move by −θᵢH⁻¹eᵢ/[H⁻¹]ᵢᵢ (WoodFisher eqs. 10–11)."""
    rng = np.random.default_rng(1)
    for d in (5, 8, 12):
        H, theta = random_pd(d, rng), rng.standard_normal(d)
        Hinv = np.linalg.inv(H)
        i = int(np.argmin(theta**2 / np.diag(Hinv)))
        expected = theta - theta[i] * Hinv[:, i] / Hinv[i, i]
        x = one_step("iobs_exact", quadratic_model(H, theta), k=d - 1)
        assert x[i] == 0.0
        np.testing.assert_allclose(x, expected, atol=1e-12)


def repeated_single_weight_steps(H: np.ndarray, theta: np.ndarray, k: int) -> np.ndarray:
    """OBC as d − k exact I-OBS steps, each with budget (#alive − 1) on the problem restricted to the alive
    weights; the gradient there is zero because every iterate is optimal on its own support."""
    w, alive = theta.copy(), np.arange(theta.size)
    while alive.size > k:
        H_alive = H[np.ix_(alive, alive)]
        z = one_step("iobs_exact", quadratic_model(H_alive, w[alive]), k=alive.size - 1)
        w[alive] = z
        alive = alive[z != 0]
    return w


def test_greedy_obs_variant_equals_repeated_single_weight_exact_steps():
    """OBC (Frantar & Alistarh 2022) on ‖Xθ − Xθ₀‖² is d − k repeated one-weight I-OBS steps (paper §3.4)."""
    rng = np.random.default_rng(2)
    for d, k in [(8, 3), (12, 5), (15, 1)]:
        X = rng.standard_normal((2 * d, d))
        theta0 = rng.standard_normal(d)
        H = X.T @ X
        x = one_step("iobs_obs", quadratic_model(H, theta0), k=k)
        np.testing.assert_allclose(x, repeated_single_weight_steps(H, theta0, k), atol=1e-10)
        w_obc, order = iobs.obc_prune(theta0, np.linalg.inv(H), k)
        np.testing.assert_allclose(w_obc, x, atol=1e-10)
        assert len(set(order)) == d - k and np.all(x[order] == 0)


def test_topk_support_rule_gives_the_newton_step_restricted_to_the_topk_support():
    rng = np.random.default_rng(3)
    problem = quadratic_model(random_pd(9, rng), rng.standard_normal(9), rng.standard_normal(9))
    keep = np.sort(np.argsort(-np.abs(problem.x_star))[:4])
    x = one_step("iobs_obs", problem, k=4, support="topk")
    rhs = problem.H @ problem.x0 - problem.g
    np.testing.assert_allclose(x[keep], np.linalg.solve(problem.H[np.ix_(keep, keep)], rhs[keep]), atol=1e-12)
    assert np.count_nonzero(x) == 4


@pytest.mark.parametrize("seed", range(3))
def test_topk_iobs_exact_newton_lands_on_x_star_in_one_step(seed):
    """Noiseless overdetermined least squares: θ⁺ = x* exactly, so one step suffices (notes §3.3, remark 4)."""
    problem = make_least_squares(n=80, d=40, k_star=5, kappa=100.0, seed=seed)
    for k in (5, 10):
        result = make_solver("topk_iobs", k=k, max_iter=3).run(problem)
        assert result.trace[1]["distance"] < 1e-10


def test_topk_iobs_with_the_papers_step_2_over_n_follows_a_slow_curve():
    """The paper's Figure 1 code is Topk-I-OBS with γ = 2/n: slow, steady decrease (notes §4.3)."""
    problem = make_paper_gaussian_prior(seed=0)
    result = make_solver("topk_iobs", k=64, newton_step=2 / 256, max_iter=750).run(problem)
    error = np.array([row["distance"] for row in result.trace])
    assert error[1] > 0.95 * error[0]
    assert error[100] < 0.8 * error[0] and error[300] < 0.5 * error[0]
    assert error[750] < 0.05 * error[0]
    assert np.all(np.diff(error[::50]) < 0)


@pytest.mark.parametrize("make", [
    lambda seed: make_logistic_regression(n=200, d=40, k_star=5, init_radius=0.5, seed=seed),
    lambda seed: make_quartic_sensing(m=40, d=60, k_star=4, init_radius=0.5, seed=seed),
], ids=["logistic", "quartic"])
def test_topk_iobs_converges_quadratically_near_x_star(make):
    """Lemma 3: e_{t+1} ≤ C e_t² locally; the ratio stays bounded while the error falls by 9+ orders."""
    for seed in range(3):
        problem = make(seed)
        assert problem.hessian_is_constant is False
        result = make_solver("topk_iobs", max_iter=8).run(problem)
        error = np.array([row["distance"] for row in result.trace])
        assert error[0] == pytest.approx(0.5)
        assert error[4] < 1e-9 * error[0]
        resolved = error[1:] > 1e-13
        ratios = error[1:][resolved] / error[:-1][resolved] ** 2
        assert ratios.size >= 3 and np.all(ratios < 2.0)


def test_topk_iobs_factorises_a_constant_hessian_once_per_run(monkeypatch):
    calls = []

    def counting_factor(H, damping=0.0):
        calls.append(H.shape)
        return original(H, damping)

    original = iobs.cholesky_factor
    monkeypatch.setattr(iobs, "cholesky_factor", counting_factor)
    counts = []
    record = lambda solver, state, row: counts.append(state.cache["n_factorizations"])  # noqa: E731
    problem = make_paper_gaussian_prior(seed=1)
    make_solver("topk_iobs", k=64, newton_step=0.01, max_iter=20).run(problem, callbacks=[record])
    assert len(calls) == 1 and counts == [1] * 20
    calls.clear(), counts.clear()
    logistic = make_logistic_regression(n=100, d=20, k_star=3, init_radius=1.0, seed=0)
    result = make_solver("topk_iobs", max_iter=3, tol=1e-300).run(logistic, callbacks=[record])
    assert len(calls) == result.n_iter == counts[-1]


def test_singular_or_indefinite_hessian_is_refused_with_the_fix():
    problem = make_compressed_sensing(m=30, d=60, k_star=3, seed=0)
    result = make_solver("topk_iobs").run(problem)
    assert result.status == "error" and "set damping > 0" in result.message
    assert make_solver("topk_iobs", damping=1e-3).run(problem).status == "ok"
    indefinite = quadratic_model(np.diag([1.0, -1.0, 2.0]), np.ones(3))
    assert "set damping > 0" in make_solver("iobs_exact", k=1).run(indefinite).message


def test_parameters_are_validated_before_running():
    problem = make_compressed_sensing(m=40, d=64, k_star=4, seed=0)
    with pytest.raises(SolverConfigError, match="max_subsets"):
        make_solver("iobs_exact").run(problem)
    for name, params in [("topk_iobs", dict(damping=-1.0)), ("topk_iobs", dict(newton_step=0.0)),
                         ("iobs_obs", dict(support="random")), ("stochastic_iobs", dict(batch_size=0)),
                         ("stochastic_iobs", dict(lam=-1.0))]:
        with pytest.raises(SolverConfigError):
            make_solver(name, **params).run(problem)


def test_exact_iobs_search_is_fast_enough_at_its_default_limit():
    """C(20, 5) = 15504 supports, scored in batched 5×5 solves."""
    rng = np.random.default_rng(4)
    problem = quadratic_model(random_pd(20, rng), rng.standard_normal(20), rng.standard_normal(20))
    x = one_step("iobs_exact", problem, k=5)
    assert np.count_nonzero(x) == 5
    assert problem.objective(x) <= problem.objective(one_step("iobs_obs", problem, k=5)) + 1e-12


def test_stochastic_iobs_step_rule_and_determinism():
    problem = make_compressed_sensing(m=100, d=256, k_star=5, seed=3)
    rows = []
    result = make_solver("stochastic_iobs", batch_size=20, seed=7, max_iter=30).run(
        problem, callbacks=[lambda solver, state, row: rows.append(state.step_size)])
    again = make_solver("stochastic_iobs", batch_size=20, seed=7, max_iter=30).run(problem)
    np.testing.assert_array_equal(result.x, again.x)
    L = problem.smoothness()
    assert rows[0] == pytest.approx(1 / L)  # x0 = 0: empty support, step 1/λ
    assert all(0 < eta <= 1 / L for eta in rows)
    other = make_solver("stochastic_iobs", batch_size=20, seed=8, max_iter=30).run(problem)
    assert not np.array_equal(result.x, other.x)
