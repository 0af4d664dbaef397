"""Target 3: the cost structure of Topk-I-OBS.

- Quadratic (noiseless compressed sensing, m = d/2, damping 1e-3 as in every m < d run): the Hessian AᵀA + λI
  is factorised once per run, in ``init``; an iteration is a gradient and two triangular solves, O(d²). Rows:
  the number of factorisations after init + all timed iterations (target 1), and the fitted exponent of the
  time per iteration against d (target ≤ 2.2, i.e. O(d²) up to timing noise).
- Non-quadratic (the ``quartic`` problem: least squares plus a separable quartic, m = d/2): the Hessian changes
  every iteration, so it is factorised every iteration (O(d³)); the damped Hessian is written into a workspace
  kept for the run. Rows: the fitted exponent (reported, expected ≈ 3), and the peak memory one iteration
  allocates, in d×d float64 matrices (tracemalloc, workspace already allocated). With the workspace only one
  d×d array is new at a time (the problem's Hessian, then the Cholesky factor): target ≤ 1.5. The reference
  is the same iteration forming λI and H + λI as fresh arrays (`AllocatingTopkIOBS`), which peaks at 2.
"""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.harness import Settings, fit_exponent, time_call, wall_time
from benchmarks.report import Row
from problems.base import Problem
from problems.nonquadratic import make_quartic_sensing
from problems.sensing import make_compressed_sensing
from solvers.base import State, make_solver
from solvers.iobs import TopkIOBS

log = logging.getLogger(__name__)

GROUP = "3 Topk-I-OBS cost"
DIMS = [250, 500, 1000, 2000]
SMOKE_DIMS = [16, 32]
DAMPING = 1e-3
QUADRATIC_EXPONENT = 2.2
PEAK_MATRICES = 1.5


class AllocatingTopkIOBS(TopkIOBS):
    """Topk-I-OBS forming H + λI from fresh arrays every iteration: the baseline of the workspace row."""

    def _damped_hessian(self, problem: Problem, state: State) -> np.ndarray:
        H = np.asarray(problem.hessian(state.x))
        return H + self.damping * np.eye(problem.d) if self.damping else H


def prepared(problem: Problem, solver: TopkIOBS | None = None) -> tuple[TopkIOBS, State, float]:
    """Topk-I-OBS (``solver`` or a new one) validated and initialised on ``problem``, after one iteration, and
    the seconds ``init`` took."""
    solver = solver or make_solver("topk_iobs", damping=DAMPING)
    solver.validate(problem)
    seconds, state = wall_time(lambda: solver.init(problem))
    return solver, solver.step(problem, state), seconds


def quadratic_rows(dims: list[int], repeats: int) -> list[Row]:
    """Factorisations per run and the per-iteration exponent on compressed sensing."""
    per_iteration, init_times, factorisations = [], [], []
    for d in dims:
        problem = make_compressed_sensing(m=d // 2, d=d, k_star=max(1, d // 40), seed=0)
        solver, state, init_seconds = prepared(problem)
        per_iteration.append(time_call(lambda: solver.step(problem, state), repeats).median)
        init_times.append(init_seconds)
        factorisations.append(state.cache["n_factorizations"])
    times = ", ".join(f"d={d}: {t * 1e3:.3g} ms" for d, t in zip(dims, per_iteration))
    return [
        Row(GROUP, f"quadratic: Hessian factorisations per run (d = {dims[0]}..{dims[-1]})", max(factorisations),
            "", threshold=1.0, note=f"after init and {repeats + 2} iterations; init (AᵀA + Cholesky) "
                                    f"{init_times[-1]:.3g} s at d={dims[-1]}, exponent "
                                    f"{fit_exponent(dims, init_times):.2f}"),
        Row(GROUP, "quadratic: time per iteration vs d, fitted exponent", fit_exponent(dims, per_iteration), "",
            threshold=QUADRATIC_EXPONENT, note=f"median of {repeats}: {times}"),
    ]


def nonquadratic_rows(dims: list[int], repeats: int) -> list[Row]:
    """Per-iteration exponent and peak memory of one iteration on the quartic problem."""
    per_iteration, peaks, allocating = [], [], []
    for d in dims:
        problem = make_quartic_sensing(m=d // 2, d=d, k_star=max(1, d // 40), seed=0)
        solver, state, _ = prepared(problem)
        per_iteration.append(time_call(lambda: solver.step(problem, state), repeats).median)
        peaks.append(peak_matrices(solver, problem, state))
        baseline, baseline_state, _ = prepared(problem, AllocatingTopkIOBS(damping=DAMPING))
        allocating.append(peak_matrices(baseline, problem, baseline_state))
        if state.cache["n_factorizations"] != repeats + 3:
            log.warning("unexpected factorisation count %d", state.cache["n_factorizations"])
    times = ", ".join(f"d={d}: {t * 1e3:.3g} ms" for d, t in zip(dims, per_iteration))
    return [
        Row(GROUP, "non-quadratic: time per iteration vs d, fitted exponent", fit_exponent(dims, per_iteration),
            "", note=f"one Cholesky per iteration (O(d³)); median of {repeats}: {times}"),
        Row(GROUP, "non-quadratic: peak memory of one iteration, d×d float64 matrices", max(peaks), "",
            threshold=PEAK_MATRICES, note=f"max over d (tracemalloc); H + λI written into the run's workspace; "
                                          f"forming λI and H + λI afresh each iteration: {max(allocating):.3g}"),
    ]


def peak_matrices(solver: TopkIOBS, problem: Problem, state: State) -> float:
    """Peak bytes allocated during one step (workspace already allocated), in units of 8·d² bytes."""
    tracemalloc.start()
    try:
        solver.step(problem, state)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / (8.0 * problem.d**2)


def run(settings: Settings) -> list[Row]:
    dims = settings.pick(DIMS, SMOKE_DIMS)
    repeats = max(3, settings.repeats // 3) if not settings.smoke else 1
    with threadpool_limits(limits=settings.blas_threads):
        rows = quadratic_rows(dims, repeats) + nonquadratic_rows(dims, repeats)
    for row in rows:
        log.info("%s: %.3g", row.target, row.value)
    return rows

