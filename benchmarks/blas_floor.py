"""Target 1: one iteration at the BLAS floor.

The floor of a gradient iteration for least squares is the two dense matrix-vector products ``A @ x`` and
``A.T @ r``. One IHT / NIHT iteration (``solver.step``) is timed against it, interleaved, on a mid-run iterate
(after three iterations from zero) of a noiseless Gaussian instance with k* = m/10. HTP and CoSaMP also solve a
least-squares problem per iteration; their *matrix-vector part* is the step time minus the time of that
least-squares solve on a support of the size the step uses (|S| = k for HTP, |supp x ∪ top-2k| ≤ 3k for
CoSaMP). Both sides run under the same BLAS thread limit.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.harness import Settings, time_interleaved
from benchmarks.report import Row
from problems.base import LeastSquaresProblem
from problems.sensing import make_compressed_sensing
from solvers._kernels import gradient_at, least_squares_on_support, top_k_indices
from solvers.base import IterativeSolver, State, make_solver

log = logging.getLogger(__name__)

GROUP = "1 BLAS floor"
SIZES = [(1000, 5000), (2000, 10000)]
SMOKE_SIZES = [(40, 200)]
#: Solvers and the parameters they are timed with (IHT: η = 0.5, the step that recovers these instances).
SOLVERS = {"iht": dict(step_size=0.5), "niht": {}, "htp": {}, "cosamp": {}}
#: What an iteration does beyond the floor's two products, for the notes.
EXTRA_WORK = {
    "iht": "Ax of the k-sparse iterate from k columns (sparse_product), so about one dense product",
    "niht": "gradient with Ax from the k support columns, plus A·g_Γ and, when the support changes, A(x̃ − x) per backtrack",
}
THRESHOLD = 1.3
WARM_ITERATIONS = 3


def run(settings: Settings) -> list[Row]:
    """One row per (solver, size): iteration (or its matrix-vector part) over the floor, target ≤ 1.3."""
    rows = []
    with threadpool_limits(limits=settings.blas_threads):
        for m, d in settings.pick(SIZES, SMOKE_SIZES):
            problem = make_compressed_sensing(m=m, d=d, k_star=max(1, m // 10), seed=0)
            for name, params in SOLVERS.items():
                rows.append(_solver_row(problem, name, params, settings))
                log.info("%s", rows[-1])
    return rows


def mid_run_state(problem: LeastSquaresProblem, name: str, params: dict) -> tuple[IterativeSolver, State]:
    """The solver and its state after `WARM_ITERATIONS` iterations from x₀ = 0 (a k-sparse iterate)."""
    solver = make_solver(name, **params)
    solver.validate(problem)
    state = solver.init(problem)
    for _ in range(WARM_ITERATIONS):
        state = solver.step(problem, state)
    return solver, state


def least_squares_part(problem: LeastSquaresProblem, name: str, solver: IterativeSolver,
                       state: State) -> Callable[[], object] | None:
    """The least-squares solve one step of HTP / CoSaMP makes from ``state`` (None for IHT and NIHT)."""
    gradient = gradient_at(problem, state.x)
    if name == "htp":
        support = top_k_indices(state.x - state.step_size * gradient, solver.k_)
    elif name == "cosamp":
        support = np.union1d(top_k_indices(-gradient, 2 * solver.k_), np.flatnonzero(state.x))
    else:
        return None
    return lambda: least_squares_on_support(problem.A, problem.y, support)


def _solver_row(problem: LeastSquaresProblem, name: str, params: dict, settings: Settings) -> Row:
    A, m, d = problem.A, problem.m, problem.d
    solver, state = mid_run_state(problem, name, params)
    x, r = state.x, A @ state.x - problem.y
    works = {"floor": lambda: (A @ x, A.T @ r), "step": lambda: solver.step(problem, state)}
    solve = least_squares_part(problem, name, solver, state)
    if solve is not None:
        works["least_squares"] = solve
    timings = time_interleaved(works, settings.repeats)
    floor, step = timings["floor"].median, timings["step"].median
    if solve is None:
        return Row(GROUP, f"{name.upper()} iteration vs A@x + A.T@r, {m}x{d}", step * 1e3, "ms", floor * 1e3,
                   THRESHOLD, note=f"{EXTRA_WORK[name]}; median of {settings.repeats} interleaved repeats; "
                                   f"floor min {timings['floor'].minimum * 1e3:.3g} ms, step min "
                                   f"{timings['step'].minimum * 1e3:.3g} ms")
    solve_time = timings["least_squares"].median
    return Row(GROUP, f"{name.upper()} matrix-vector part vs A@x + A.T@r, {m}x{d}", (step - solve_time) * 1e3,
               "ms", floor * 1e3, THRESHOLD,
               note=f"step {step * 1e3:.3g} ms minus its least-squares solve {solve_time * 1e3:.3g} ms "
                    f"(medians of {settings.repeats} interleaved repeats)")
