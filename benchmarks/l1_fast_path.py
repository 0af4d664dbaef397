"""Target 4: the ℓ1 fast paths against their cvxpy references.

- Basis pursuit, min ‖x‖₁ s.t. Ax = y, at 200×1000 (k* = 20, noiseless Gaussian): obsbench's default
  ``method=lars`` (the Lasso homotopy to λ = 0 by scikit-learn's ``lars_path``, accepted with a duality
  certificate, else the HiGHS LP) against ``method=cvxpy`` with Clarabel. Targets: solutions agree to 1e-6
  (max-norm of the difference), and the default is ≥ 10× faster. Reported beside it without a target:
  ``method=highs`` (the LP in 2d nonnegative variables, scipy's HiGHS), the fallback.
- Lasso, min ½‖Ax − y‖² + λ‖x‖₁ (20 dB SNR, λ = 0.05‖Aᵀy‖_∞): ``method=lars`` (scikit-learn's LassoLars)
  against ``method=cvxpy`` with Clarabel. Target: objectives agree to 1e-6 (relative); the speed-up is
  reported.

Times are the solvers' own clocks (``Result.time_s``: the whole ``solve``, cvxpy's compilation included),
medians over seeds and repeats, the two methods interleaved.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.harness import Settings
from benchmarks.report import Row
from problems.base import LeastSquaresProblem
from problems.sensing import make_compressed_sensing
from solvers.base import make_solver
from solvers.convex import CERTIFICATE_TOL, homotopy_basis_pursuit

log = logging.getLogger(__name__)

GROUP = "4 l1 fast path"
SIZE, SMOKE_SIZE = (200, 1000, 20), (30, 60, 3)
REFERENCE = dict(method="cvxpy", cvxpy_solver="CLARABEL")
AGREEMENT = 1e-6
SPEEDUP = 10.0
LASSO_RATIO = 0.05


def compare(problems: list[LeastSquaresProblem], name: str, fast: dict, repeats: int,
            extras: dict[str, dict] | None = None) -> dict[str, list]:
    """Run solver ``name`` with the ``fast`` parameters, with the same parameters on the cvxpy reference, and
    with each parameter set of ``extras``, on every problem, interleaved. Returns, per key (``fast``,
    ``reference``, the extras), the times and, under ``x_<key>``, the solutions of the first repeat."""
    out: dict[str, list] = {}
    for problem in problems:
        variants = {"fast": fast, "reference": {**fast, **REFERENCE},
                    **{key: {**fast, **params} for key, params in (extras or {}).items()}}
        works = {key: functools.partial(_timed_solve, name, params, problem) for key, params in variants.items()}
        for repeat in range(repeats):
            for key, work in works.items():
                seconds, x = work()
                out.setdefault(key, []).append(seconds)
                if repeat == 0:
                    out.setdefault(f"x_{key}", []).append(x)
    return out


def _timed_solve(name: str, params: dict, problem: LeastSquaresProblem) -> tuple[float, np.ndarray]:
    """The solver clock and the solution of one run."""
    result = make_solver(name, **params).run(problem)
    return result.time_s, result.x


def max_gap(solutions: list[np.ndarray], references: list[np.ndarray]) -> float:
    """The largest max-norm difference between paired solutions."""
    return max(float(np.max(np.abs(a - b))) for a, b in zip(solutions, references))


def basis_pursuit_rows(problems: list[LeastSquaresProblem], repeats: int, size: str) -> list[Row]:
    out = compare(problems, "basis_pursuit", {}, repeats, {"highs": dict(method="highs")})
    median = {key: float(np.median(out[key])) for key in ("fast", "reference", "highs")}
    certified = sum(homotopy_basis_pursuit(p.A, p.y)[2] <= CERTIFICATE_TOL for p in problems)
    runs = f"medians over {len(problems)} instances x {repeats} repeats"
    return [
        Row(GROUP, f"basis pursuit default (certified LARS homotopy) vs cvxpy/Clarabel: max |x - x_cvxpy|, {size}",
            max_gap(out["x_fast"], out["x_reference"]), "", threshold=AGREEMENT,
            note=f"max over {len(problems)} instances; homotopy certified on {certified}, LP fallback on the rest"),
        Row(GROUP, f"basis pursuit speed-up of the default over cvxpy/Clarabel, {size}", median["reference"], "s",
            median["fast"], SPEEDUP, ">=", note=f"{runs}; ratio = cvxpy time / obsbench time"),
        Row(GROUP, f"basis pursuit speed-up of the HiGHS LP (method=highs, the fallback) over cvxpy/Clarabel, {size}",
            median["reference"], "s", median["highs"], sense=">=",
            note=f"{runs}; max |x - x_cvxpy| {max_gap(out['x_highs'], out['x_reference']):.2g}"),
    ]


def lasso_rows(problems: list[LeastSquaresProblem], repeats: int, size: str) -> list[Row]:
    out = compare(problems, "lasso", dict(lam_ratio=LASSO_RATIO), repeats)
    lam = [make_solver("lasso", lam_ratio=LASSO_RATIO).regularisation(p) for p in problems]

    def objective(problem: LeastSquaresProblem, x: np.ndarray, lam_value: float) -> float:
        return 0.5 * float(np.sum((problem.A @ x - problem.y) ** 2)) + lam_value * float(np.abs(x).sum())

    gap = max(abs(objective(p, a, l) - objective(p, b, l)) / objective(p, b, l)
              for p, a, b, l in zip(problems, out["x_fast"], out["x_reference"], lam))
    fast, reference = float(np.median(out["fast"])), float(np.median(out["reference"]))
    return [
        Row(GROUP, f"Lasso LassoLars vs cvxpy/Clarabel: relative objective gap, {size}", gap, "",
            threshold=AGREEMENT, note=f"max over {len(problems)} instances, lambda = {LASSO_RATIO}·‖Aᵀy‖∞"),
        Row(GROUP, f"Lasso speed-up of LassoLars over cvxpy/Clarabel, {size}", reference, "s", fast,
            sense=">=", note=f"medians over {len(problems)} instances x {repeats} repeats; reported only"),
    ]


def run(settings: Settings) -> list[Row]:
    m, d, k = settings.pick(SIZE, SMOKE_SIZE)
    seeds, repeats = settings.pick(3, 1), settings.pick(2, 1)
    size = f"{m}x{d}, k={k}"
    with threadpool_limits(limits=settings.blas_threads):
        noiseless = [make_compressed_sensing(m=m, d=d, k_star=k, seed=seed) for seed in range(seeds)]
        noisy = [make_compressed_sensing(m=m, d=d, k_star=k, snr_db=20.0, seed=seed) for seed in range(seeds)]
        make_solver("lasso", lam_ratio=LASSO_RATIO).run(noisy[0])  # warm-up: imports scikit-learn and cvxpy
        make_solver("basis_pursuit", **REFERENCE).run(noiseless[0])
        return basis_pursuit_rows(noiseless, repeats, size) + lasso_rows(noisy, repeats, size)
