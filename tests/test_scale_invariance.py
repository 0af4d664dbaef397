"""Defaults that survive real data: every registered solver's defaults are scale-free.

Multiplying A by 2^a and y by 2^b is exact in floating point (only exponents change), so a solver whose rules
are all relative (steps in units of 1/L, tolerances relative to ‖y‖ or ‖x‖) performs bit for bit the same
operations up to the exponents, and must select the same support. A difference can only come from an absolute
constant somewhere in a default — which is what this test is for. Solvers whose answer does not depend on the
scale of each column (``"columns"`` in `Solver.invariances`, e.g. exact I-OBS = best subset) are also checked
with every column rescaled by its own power of two.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from problems import make_compressed_sensing, make_least_squares

from .test_solver_contract import IDS, SOLVER_YAMLS, make

GLOBAL_SCALES = [(2.0**-20, 1.0), (1.0, 2.0**30), (2.0**25, 2.0**-12)]


def support(x: np.ndarray) -> list[int]:
    return np.flatnonzero(x).tolist()


def noisy_regression(seed: int):
    """Noisy and correlated enough that a bad scale choice would change the selected support."""
    return make_least_squares(n=40, d=16, k_star=3, kappa=30.0, snr_db=15.0, seed=seed)


def rescaled(problem, a_scale, y_scale):
    a_scale = np.asarray(a_scale, dtype=float)
    return dataclasses.replace(problem, A=problem.A * a_scale, y=problem.y * y_scale,
                               x_star=problem.x_star * y_scale / a_scale)


def instances():
    """Noisy regression (n > d: every method applies but basis pursuit, whose Ax = y is infeasible) and noisy
    compressed sensing (m < d: every method but the undamped Newton-type ones)."""
    for seed in range(3):
        yield noisy_regression(seed)
        yield make_compressed_sensing(m=24, d=48, k_star=3, snr_db=20.0, seed=seed)


@pytest.mark.parametrize("path", SOLVER_YAMLS, ids=IDS)
def test_rescaling_a_and_y_does_not_change_the_selected_support(path):
    if "global" not in make(path).invariances:
        pytest.skip(f"{make(path).name}: its published rule is not scale-free (see its class)")
    applied = 0
    for problem in instances():
        reference = make(path).run(problem)
        applied += reference.status != "error"
        for a_scale, y_scale in GLOBAL_SCALES:
            result = make(path).run(rescaled(problem, a_scale, y_scale))
            assert support(result.x) == support(reference.x), (problem.name, a_scale, y_scale, result.message)
            assert result.status == reference.status and result.n_iter == reference.n_iter, result.message
    assert applied >= 3


@pytest.mark.parametrize("path", SOLVER_YAMLS, ids=IDS)
def test_column_scale_invariant_solvers_ignore_each_columns_scale(path):
    solver = make(path)
    if "columns" not in solver.invariances:
        pytest.skip(f"{solver.name} depends on the column scales by design")
    for seed in range(3):
        problem = noisy_regression(seed)
        column_scales = 2.0 ** np.random.default_rng(seed).integers(-8, 9, size=problem.d)
        reference = make(path).run(problem)
        result = make(path).run(rescaled(problem, column_scales, 1.0))
        assert support(result.x) == support(reference.x), seed
