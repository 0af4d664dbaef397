"""Seed sweeps of every discrete decision the solvers take from floating-point numbers.

A stopping rule, a support, a rank check or a certified bound must come out the same on any machine, whatever
BLAS rounds the last bits: each property here holds over 300 seeds. The default run checks a sample of
`SAMPLE` seeds; `make test-all` runs the rest (marked ``slow``).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from problems import make_compressed_sensing, make_least_squares
from problems.base import LeastSquaresProblem
from problems.sparse_spectra import positive_definite_cholesky
from solvers.bounds import observed_run
from solvers.base import REGISTRY, make_solver

SEEDS = 300
SAMPLE = 25
SEED_BLOCKS = [pytest.param(range(SAMPLE), id="sample"),
               pytest.param(range(SAMPLE, SEEDS), id="rest", marks=pytest.mark.slow)]


@pytest.fixture(autouse=True)
def quiet_solver_warnings(caplog):
    caplog.set_level(logging.ERROR, logger="solvers")


# ------------------------------------------------------------------------------------------------ OMP
@pytest.mark.parametrize("seeds", SEED_BLOCKS)
def test_omp_never_selects_more_atoms_than_measurements(seeds):
    """5 atoms span ℝ⁵: after them the residual is rounding noise and no sixth atom may enter."""
    for seed in seeds:
        problem = make_compressed_sensing(m=5, d=12, k_star=2, snr_db=10.0, seed=seed)
        result = make_solver("omp", k=8).run(problem)
        assert np.count_nonzero(result.x) == 5, (seed, result.message)
        assert result.status == "ok" and "span R^m" in result.message
        assert np.linalg.norm(problem.residual(result.x)) < 1e-12 * np.linalg.norm(problem.y)


@pytest.mark.parametrize("seeds", SEED_BLOCKS)
def test_omp_stops_at_the_true_support_of_a_noiseless_instance(seeds):
    """y = Ax* with k* = 2 well inside OMP's recovery region: the residual is zero up to rounding after 2 atoms."""
    for seed in seeds:
        problem = make_compressed_sensing(m=40, d=80, k_star=2, seed=seed)
        result = make_solver("omp", k=8).run(problem)
        assert np.count_nonzero(result.x) == 2, (seed, result.message)
        assert result.status == "ok" and "zero up to rounding" in result.message
        assert result.trace[-1]["rel_error"] < 1e-12


@pytest.mark.parametrize("seeds", SEED_BLOCKS)
def test_omp_selection_does_not_depend_on_the_scale_of_the_data(seeds):
    """The OMP tolerances are relative: A and y multiplied by 1e±100 or y by 1e150 give the same atoms (beyond
    about 1e±146 for A the Gram entries over- or underflow float64, and OMP refuses with an `error` row)."""
    for seed in seeds:
        problem = make_compressed_sensing(m=30, d=60, k_star=3, snr_db=20.0 if seed % 2 else None, seed=seed)
        reference = make_solver("omp", k=6).run(problem)
        for a_scale, y_scale in ((1e-100, 1.0), (1.0, 1e150), (1e100, 1e-100), (1e-100, 1e100)):
            scaled = dataclasses.replace(problem, A=problem.A * a_scale, y=problem.y * y_scale,
                                         x_star=problem.x_star * (y_scale / a_scale))
            result = make_solver("omp", k=6).run(scaled)
            assert np.array_equal(np.flatnonzero(result.x), np.flatnonzero(reference.x)), (seed, a_scale, y_scale)
            assert result.n_iter == reference.n_iter and result.status == reference.status


# ------------------------------------------------------------------------------ own stopping rules
@pytest.mark.parametrize("name", ["omp", "htp", "sp"])
@pytest.mark.parametrize("seeds", SEED_BLOCKS)
def test_solvers_own_stopping_rules_fire_and_never_record_a_repeated_point(name, seeds):
    for seed in seeds:
        noisy = seed % 2 == 1
        problem = make_compressed_sensing(m=60, d=128, k_star=6, snr_db=30.0 if noisy else None, seed=seed)
        points = [problem.x0]
        result = make_solver(name).run(problem, callbacks=[lambda s, state, row: points.append(state.x)])
        assert result.status == "ok" and not result.message.startswith("converged"), (seed, result.message)
        assert len(points) == result.n_iter + 1 == len(result.trace)
        assert all(not np.array_equal(a, b) for a, b in zip(points[:-1], points[1:])), seed
        if not noisy and name != "omp":  # noiseless, easy: the rule fires at x*
            assert result.trace[-1]["rel_error"] < 1e-10, (seed, result.message)


# ----------------------------------------------------------------------------- Newton-type PD checks
NEWTON_TYPE = [name for name in ("topk_iobs", "iobs_obs") if name in REGISTRY]


@pytest.mark.parametrize("seeds", SEED_BLOCKS)
def test_singular_gram_matrices_are_always_refused(seeds):
    """Rank-deficient AᵀA (m < d, or m ≥ d with dependent columns at uneven scales) is never factorised as
    positive definite, whichever rounding the factorisation left in its last pivot."""
    eps_d = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        d = (16, 64, 120)[seed % 3]
        rank = d - 1 - seed % 3
        A = rng.standard_normal((2 * d, rank)) @ rng.standard_normal((rank, d))
        if seed % 2:
            A *= rng.lognormal(0.0, 2.0, size=d)
        with pytest.raises(np.linalg.LinAlgError):
            positive_definite_cholesky(A.T @ A)
        eps_d.append(d)
        wide = make_compressed_sensing(m=(10, 30, 63)[seed % 3], d=64, k_star=2, seed=seed)
        for name in NEWTON_TYPE:
            result = make_solver(name, k=2).run(wide)
            assert result.status == "error" and "set damping > 0" in result.message, (seed, name)


@pytest.mark.parametrize("seeds", SEED_BLOCKS)
def test_well_conditioned_hessians_are_always_accepted(seeds):
    """Positive definite Hessians with cond(XᵀX) up to 1e8 are factorised (the threshold is √ε relative)."""
    for seed in seeds:
        kappa = (1.0, 1e2, 1e4, 1e6, 1e8)[seed % 5]
        problem = make_least_squares(n=60, d=30, k_star=3, kappa=kappa, seed=seed)
        for name in NEWTON_TYPE:
            result = make_solver(name, max_iter=3).run(problem)
            assert result.status == "ok", (seed, kappa, name, result.message)


# ---------------------------------------------------------------------------------- certified bounds
@pytest.mark.parametrize("seeds", SEED_BLOCKS)
def test_newton_bounds_are_never_below_the_error_when_x_star_is_stationary_only_up_to_rounding(seeds):
    """y perturbed by 1e-9·N(0, 1) with noise_std left at 0 (as a user file would be): x* is the minimiser only
    up to ‖∇f(x*)‖/‖∇f(x0)‖ ≤ 1e-8, which the bounds accept; they must then include ‖H⁻¹∇f(x*)‖."""
    checked = 0
    for seed in seeds:
        kappa = (1e2, 1e4, 1e6)[seed % 3]
        clean = make_least_squares(n=60, d=30, kappa=kappa, seed=seed)
        perturbation = 1e-9 * np.random.default_rng(seed).standard_normal(clean.y.shape)
        for problem in (clean, dataclasses.replace(clean, y=clean.y + perturbation)):
            for name in ("topk_iobs", "iobs_exact") if problem.d <= 12 else ("topk_iobs",):
                frame = observed_run(make_solver(name, max_iter=4), problem).frame()
                rows = frame[(frame["iteration"] > 0) & (frame["bound_note"] == "")]
                assert (rows["distance"] <= rows["bound"]).all(), (seed, kappa, name, rows[["distance", "bound"]])
                checked += len(rows)
    assert checked >= len(seeds)


@pytest.mark.parametrize("seeds", SEED_BLOCKS)
def test_exact_iobs_bound_covers_rounding_on_small_quadratics(seeds):
    for seed in seeds:
        problem = make_least_squares(n=24, d=8, k_star=2, kappa=(1.0, 1e3, 1e6)[seed % 3], seed=seed)
        frame = observed_run(make_solver("iobs_exact", k=3, max_iter=3), problem).frame()
        rows = frame[(frame["iteration"] > 0) & (frame["bound_note"] == "")]
        assert len(rows) and (rows["distance"] <= rows["bound"]).all(), (seed, rows[["distance", "bound"]])


# ------------------------------------------------------------------------------------ truthful status
def scaled_instances(seed: int) -> dict[str, LeastSquaresProblem]:
    problem = make_compressed_sensing(m=40, d=64, k_star=3, seed=seed)
    return {"A*1e300": dataclasses.replace(problem, A=problem.A * 1e300),
            "y*1e300": dataclasses.replace(problem, y=problem.y * 1e300),
            "A*1e-300": dataclasses.replace(problem, A=problem.A * 1e-300)}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in the data's own products is the point here
@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n != "iobs_exact" and not n.startswith("faulty")))
def test_status_is_never_ok_on_numbers_that_do_not_back_it(name):
    """Overflowing or underflowing data: no `ok` with a non-finite point or objective, and an `ok` at a point no
    better than x_0 says so in its message."""
    for seed in range(3):
        for label, problem in scaled_instances(seed).items():
            params = {"damping": 1e-3} if name in ("topk_iobs", "iobs_obs") else {}
            result = make_solver(name, **params).run(problem)
            final = result.trace[-1]["objective"]
            if result.status == "ok":
                assert np.all(np.isfinite(result.x)) and np.isfinite(final), (label, result.message)
                start = float(problem.objective(problem.x0))
                if not final < start:
                    assert "did not decrease" in result.message, (label, result.message)
