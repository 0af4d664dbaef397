"""Numerical safety, over every registered solver: degenerate data gives a defined result and status."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from problems.base import LeastSquaresProblem
from solvers.base import STATUSES

from .test_solver_contract import SOLVER_YAMLS, make


def least_squares(A: np.ndarray, x_star: np.ndarray) -> LeastSquaresProblem:
    return LeastSquaresProblem(name="degenerate", params={}, seed=0, x_star=x_star,
                               k_star=max(1, int(np.count_nonzero(x_star))), A=A, y=A @ x_star)


def zero_signal() -> LeastSquaresProblem:
    """x* = 0, so every measurement is zero."""
    A = np.random.default_rng(0).standard_normal((30, 12)) / np.sqrt(30)
    return least_squares(A, np.zeros(12))


def duplicated_columns() -> LeastSquaresProblem:
    """A rank-deficient design: columns 0 and 1 are equal, and the signal uses one of them."""
    A = np.random.default_rng(1).standard_normal((30, 12)) / np.sqrt(30)
    A[:, 1] = A[:, 0]
    x_star = np.zeros(12)
    x_star[[0, 5]] = [1.0, -2.0]
    return least_squares(A, x_star)


def solver_for(path, problem):
    config = OmegaConf.load(path)  # Newton-type solvers need a PD Hessian: give them damping (NSIHT calls it ε)
    damping = next((name for name in ("damping", "epsilon") if name in config), None)
    return make(path, **({damping: 1e-6} if damping else {}))


@pytest.mark.parametrize("path", SOLVER_YAMLS, ids=[p.stem for p in SOLVER_YAMLS])
def test_zero_measurements_give_the_zero_solution(path):
    problem = zero_signal()
    result = solver_for(path, problem).run(problem)
    assert result.status in ("ok", "max_iter"), result.message
    assert np.allclose(result.x, 0.0, atol=1e-12)


@pytest.mark.parametrize("path", SOLVER_YAMLS, ids=[p.stem for p in SOLVER_YAMLS])
def test_rank_deficient_designs_never_crash(path):
    problem = duplicated_columns()
    result = solver_for(path, problem).run(problem)
    assert result.status in STATUSES and result.status != "error", result.message
    assert np.all(np.isfinite(result.x))
    assert np.linalg.norm(problem.A @ result.x - problem.y) < 1e-6 * np.linalg.norm(problem.y) or \
        result.frame()["objective"].iloc[-1] <= result.frame()["objective"].iloc[0]


@pytest.mark.parametrize("name", ["topk_iobs", "iobs_obs", "iobs_exact"])
def test_singular_hessian_without_damping_is_a_clear_error_row_not_a_raw_linalg_error(name):
    problem = duplicated_columns()
    path = next(p for p in SOLVER_YAMLS if p.stem == name)
    result = make(path).run(problem)
    assert result.status == "error"
    assert "set damping > 0" in result.message and "LinAlgError" not in result.message
