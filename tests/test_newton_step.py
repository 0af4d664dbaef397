"""Meng & Zhao's Newton-step hard thresholding (solvers/newton_step.py) and abess splicing (solvers/splicing.py).

The central fact: on least squares NSIHT's update x + λ(AᵀA + εI)⁻¹Aᵀ(y − Ax) is Topk-I-OBS's
θ − γ(∇²f + λI)⁻¹∇f with γ = λ_NSIHT and damping = ε, so the two produce identical iterates.
"""

from __future__ import annotations

import numpy as np
import pytest

from problems import make_compressed_sensing, make_diabetes, make_least_squares, make_logistic_regression
from problems.oracle import best_subset
from solvers.base import SolverConfigError, make_solver
from solvers.iobs import TopkIOBS
from solvers.newton_step import NSHTP, NSIHT
from solvers.splicing import Splicing, _abess


class Iterates:
    """A callback keeping every iterate."""

    def __init__(self):
        self.points = []

    def __call__(self, solver, state, row):
        self.points.append(np.array(state.x, copy=True))


def iterates(solver, problem) -> tuple[list[np.ndarray], object]:
    recorder = Iterates()
    result = solver.run(problem, callbacks=[recorder])
    return recorder.points, result


def literal_nsiht(problem, k: int, step_length: float, epsilon: float, iterations: int) -> list[np.ndarray]:
    """The paper's formula, written out independently of the solver classes."""
    A, y = problem.A, problem.y
    G = A.T @ A + epsilon * np.eye(problem.d)
    x, out = np.zeros(problem.d), []
    for _ in range(iterations):
        u = x + step_length * np.linalg.solve(G, A.T @ (y - A @ x))
        x = np.zeros_like(u)
        keep = np.argsort(-np.abs(u), kind="stable")[:k]
        x[keep] = u[keep]
        out.append(x)
    return out


PROBLEMS = {
    "cs": lambda seed: make_compressed_sensing(m=60, d=128, k_star=8, seed=seed),
    "noisy_correlated": lambda seed: make_least_squares(n=120, d=40, k_star=6, kappa=50.0, snr_db=10.0, seed=seed),
}


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
@pytest.mark.parametrize("step_length, epsilon", [(1.0, 1e-3), (0.5, 1e-2), (0.2, 1.0)])
def test_nsiht_iterates_are_damped_topk_iobs_iterates(kind, step_length, epsilon):
    for seed in range(5):
        problem = PROBLEMS[kind](seed)
        ours, result = iterates(NSIHT(step_length=step_length, epsilon=epsilon, max_iter=30), problem)
        theirs, reference = iterates(TopkIOBS(newton_step=step_length, damping=epsilon, max_iter=30), problem)
        assert len(ours) == len(theirs) and result.status == reference.status
        for a, b in zip(ours, theirs):
            assert np.array_equal(a, b)  # bit for bit: the same computation
        literal = literal_nsiht(problem, problem.k_star, step_length, epsilon, len(ours))
        for t, (a, b) in enumerate(zip(ours, literal)):
            scale = np.linalg.norm(b)
            assert np.linalg.norm(a - b) <= 1e-9 * scale, f"seed {seed}, iteration {t + 1}"


def test_nsiht_with_unit_step_lands_on_the_top_k_of_least_squares_in_one_step():
    problem = make_least_squares(n=200, d=30, k_star=5, kappa=100.0, snr_db=5.0, seed=3)
    points, _ = iterates(NSIHT(), problem)
    ols = np.linalg.lstsq(problem.A, problem.y, rcond=None)[0]
    keep = np.argsort(-np.abs(ols))[:5]
    expected = np.zeros_like(ols)
    expected[keep] = ols[keep]
    assert np.allclose(points[0], expected, rtol=1e-9, atol=1e-12 * np.abs(ols).max())


def test_nshtp_refits_on_the_nsiht_support_and_stops_when_it_repeats():
    for seed in range(20):
        problem = make_compressed_sensing(m=80, d=200, k_star=8, seed=seed)
        points, result = iterates(NSHTP(epsilon=1e-3), problem)
        assert result.status == "ok" and "support unchanged" in result.message
        x = np.zeros(problem.d)
        G = problem.A.T @ problem.A + 1e-3 * np.eye(problem.d)
        for point in points:
            u = x + np.linalg.solve(G, problem.A.T @ (problem.y - problem.A @ x))
            support = np.sort(np.argsort(-np.abs(u), kind="stable")[:8])
            x = np.zeros(problem.d)
            x[support] = np.linalg.lstsq(problem.A[:, support], problem.y, rcond=None)[0]
            assert np.allclose(point, x, rtol=1e-8, atol=1e-12)
        assert np.linalg.norm(result.x - problem.x_star) <= 1e-8 * np.linalg.norm(problem.x_star)


def test_newton_step_solvers_recover_an_easy_cs_instance_on_every_seed():
    # m = 100, d = 256, k* = 10 with ε = 1e-3: measured 200/200 for both; 100 seeds keep the test fast.
    for seed in range(100):
        problem = make_compressed_sensing(m=100, d=256, k_star=10, seed=seed)
        for solver in (NSIHT(epsilon=1e-3), NSHTP(epsilon=1e-3)):
            result = solver.run(problem)
            error = np.linalg.norm(result.x - problem.x_star) / np.linalg.norm(problem.x_star)
            assert error < 1e-6, (solver.name, seed)


def test_newton_step_solvers_need_least_squares_and_valid_parameters():
    logistic = make_logistic_regression(n=80, d=10, k_star=3, seed=0)
    assert NSIHT().skip(logistic)[0] and NSHTP().skip(logistic)[0]
    problem = make_compressed_sensing(m=30, d=60, k_star=3, seed=0)
    for bad in (dict(step_length=0.0), dict(step_length=-1.0), dict(epsilon=-1e-3), dict(epsilon=float("nan"))):
        with pytest.raises(SolverConfigError) as error:
            NSIHT(**bad).validate(problem)
        assert "\n" not in str(error.value)
    result = NSIHT().run(problem)  # m < d with ε = 0: AᵀA is singular
    assert result.status == "error" and "set epsilon > 0" in result.message


def test_yaml_names_follow_the_paper():
    assert NSIHT.param_names()[:2] == ["step_length", "epsilon"]
    assert "newton_step" not in NSIHT.param_names() and "damping" not in NSHTP.param_names()
    solver = make_solver("nsiht", step_length=0.5, epsilon=0.1)
    assert solver.newton_step == 0.5 and solver.damping == 0.1


# ------------------------------------------------------------------------------------------------ splicing
needs_abess = pytest.mark.skipif(_abess() is None, reason="optional extra obsbench[splicing] (abess) missing")


@needs_abess
@pytest.mark.parametrize("k", [3, 5])
def test_splicing_finds_the_best_subset_of_diabetes(k):
    problem = make_diabetes(k_star=k)
    result = Splicing().run(problem)
    assert result.status == "ok"
    assert problem.objective(result.x) <= best_subset(problem, k).objective * (1 + 1e-9)


@needs_abess
def test_splicing_recovers_most_cs_instances_whatever_the_scale_of_y():
    # m = 100, d = 256, k* = 10: measured 48/50 seeds at every scale of y below; splicing is a local search.
    recovered = 0
    for seed in range(50):
        problem = make_compressed_sensing(m=100, d=256, k_star=10, seed=seed)
        supports = []
        for factor in (1e-8, 1.0, 1e8):
            x = _solve(Splicing(k=10), _with_y(problem, problem.y * factor)) / factor
            supports.append(tuple(np.flatnonzero(x)))
        assert len(set(supports)) == 1, seed
        recovered += np.linalg.norm(x - problem.x_star) <= 1e-6 * np.linalg.norm(problem.x_star)
    assert recovered >= 45


def _solve(solver, problem) -> np.ndarray:
    solver.validate(problem)
    return solver.solve(problem)[0]


def _with_y(problem, y):
    from problems import LeastSquaresProblem

    return LeastSquaresProblem(name=problem.name, params=problem.params, seed=problem.seed, x_star=problem.x_star,
                               k_star=problem.k_star, A=problem.A, y=y)


@needs_abess
def test_splicing_without_rescaling_stops_early_on_a_unit_scale_y():
    # the reason for loss_scale: abess's threshold is absolute, so a y with ||y||^2/n = 1e-6 stops at once
    fails = 0
    for seed in range(10):
        problem = make_compressed_sensing(m=100, d=256, k_star=10, seed=seed)
        x = _solve(Splicing(loss_scale=1e-3), problem)
        fails += np.linalg.norm(x - problem.x_star) > 1e-6 * np.linalg.norm(problem.x_star)
    assert fails >= 5


def test_splicing_refuses_bad_parameters_in_one_line():
    problem = make_compressed_sensing(m=30, d=60, k_star=3, seed=0)
    for bad in (dict(exchange_num=0), dict(max_iter=0), dict(loss_scale=0.0), dict(k=61)):
        with pytest.raises(SolverConfigError) as error:
            Splicing(**bad).validate(problem)
        assert "\n" not in str(error.value)
