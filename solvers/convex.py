"""Convex ℓ1 baselines: basis pursuit and the Lasso, each with cvxpy as the reference and a fast path.

- Basis pursuit, min ‖x‖₁ s.t. Ax = y: the end of the Lasso homotopy at λ = 0 (scikit-learn's ``lars_path``),
  accepted only with a duality certificate, else the linear program min 1ᵀ(u + v) s.t. A(u − v) = y, u, v ≥ 0
  solved by scipy's HiGHS (fast path); or cvxpy (reference; any installed conic solver).
- Lasso, min ½‖Ax − y‖² + λ‖x‖₁, by scikit-learn's LassoLars (exact homotopy; fast path) or cvxpy.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.optimize

from problems.base import Problem
from solvers._kernels import least_squares_on_support, max_column_norm, robust_norm
from problems.validation import positive
from solvers.base import DirectSolver, SolverConfigError

log = logging.getLogger(__name__)

METHODS = ("lars", "highs", "cvxpy")
#: The cvxpy back ends used when ``cvxpy_solver`` is None, first installed wins (all open source).
OPEN_CVXPY_SOLVERS = ("CLARABEL", "ECOS", "SCS")
#: Relative duality gap and residual below which the homotopy end point is accepted as the BP solution. The
#: gap is relative to ‖x‖₁ (unchanged when A or y is rescaled), and the decision only picks which of two
#: solvers' answers is returned: a rejected end point falls back to the LP, whose answer agrees to ~1e-8, so a
#: gap that rounds to either side of the threshold on another BLAS changes no verdict.
CERTIFICATE_TOL = 1e-9
#: scikit-learn's ``lars_path`` stops its path at α = ‖Aᵀr‖_∞/m ≤ float32's ε (``equality_tolerance``, absolute).
LARS_STOP = float(np.finfo(np.float32).eps)
#: `homotopy_basis_pursuit` scales y so that the path stops at λ/λ_max = PATH_END: far enough to reach the final
#: active set (1e-4, the stop on normalised data, was not), not so far that the last knots are rounding noise
#: (1e-13 lost certificates the 1e-10 stop gave, on 7 instances from 100 × 1000 to 967 × 1000).
PATH_END = 1e-10


@dataclass(frozen=True)
class Unscale:
    """Maps the solution x̃ of the normalised problem (Ã = A/a, ỹ = y/b) back to x = (b/a)·x̃."""

    a_scale: float
    y_scale: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x * (self.y_scale / self.a_scale)


def normalised(A: np.ndarray, y: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], Unscale]:
    """(A/a, y/b) with a = max_j ‖a_j‖ and b = ‖y‖, and the map back to the original scale.

    HiGHS, LARS and the conic solvers stop on absolute tolerances (feasibility 1e-7, LARS's `eps`), so the
    same instance with A or y multiplied by 2⁻²⁰ would be solved to a different accuracy, or reported
    infeasible. On the normalised data those tolerances are relative, and the solution does not depend on the
    scale of A or y (tested registry-wide). y = 0 (or A = 0) is left as it is.
    """
    a_scale, y_scale = max_column_norm(A), robust_norm(y)
    if not (a_scale > 0 and y_scale > 0 and np.isfinite(a_scale) and np.isfinite(y_scale)):
        return (A, y), Unscale(1.0, 1.0)
    return (A / a_scale, y / y_scale), Unscale(a_scale, y_scale)


def _cvxpy_solve(problem_cp: Any, solver: str | None) -> int:
    """Solve a cvxpy problem with the named solver; refuse unknown or non-optimal outcomes clearly."""
    import cvxpy as cp

    installed = cp.installed_solvers()
    if solver is not None and solver.upper() not in installed:
        raise SolverConfigError(f"cvxpy_solver={solver!r} is not installed; choose one of {', '.join(installed)}")
    if solver is None:
        # cvxpy's own choice prefers a commercial solver when one is importable (gurobipy arrives with the
        # `oracle` extra), and a size-limited licence would then fail a run that an open solver solves: the
        # reference is the same open solver on every machine.
        solver = next((name for name in OPEN_CVXPY_SOLVERS if name in installed), None)
    problem_cp.solve(solver=solver.upper() if solver else None)
    if problem_cp.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise RuntimeError(f"cvxpy returned status {problem_cp.status}")
    stats = problem_cp.solver_stats
    return int(stats.num_iters) if stats is not None and stats.num_iters is not None else 0


class BasisPursuit(DirectSolver):
    """Basis pursuit (Chen, Donoho & Saunders 1998): min ‖x‖₁ subject to Ax = y.

    Parameters
    ----------
    method : {"lars", "highs", "cvxpy"}
        ``lars``: the Lasso homotopy followed to λ = 0 (`homotopy_basis_pursuit`), accepted when a dual
        certificate proves it optimal, otherwise the ``highs`` LP; ``highs``: the equivalent LP in 2d
        nonnegative variables by scipy's HiGHS (dual simplex / IPM); ``cvxpy``: the reference formulation
        solved by ``cvxpy_solver``.
    cvxpy_solver : str, optional
        cvxpy back end (e.g. ``CLARABEL``, ``SCS``, ``ECOS``); None takes the first installed of `OPEN_CVXPY_SOLVERS`.
    time_budget : float, optional
        See `DirectSolver`.
    """

    name = "basis_pursuit"
    references = ("Chen, Donoho & Saunders 1998, Atomic decomposition by basis pursuit",)
    requires = frozenset({"least_squares"})

    def __init__(self, *, method: str = "lars", cvxpy_solver: str | None = None, **common: Any):
        super().__init__(**common)
        self.method = method
        self.cvxpy_solver = cvxpy_solver

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        if self.method not in METHODS:
            raise SolverConfigError(f"method={self.method!r} must be one of {', '.join(METHODS)}")

    def solve(self, problem: Problem) -> tuple[np.ndarray, int, str]:
        (A, y), unscale = normalised(problem.A, problem.y)
        x, n_iter, note = self._solve_normalised(A, y, problem.d)
        return unscale(x), n_iter, note

    def _solve_normalised(self, A: np.ndarray, y: np.ndarray, d: int) -> tuple[np.ndarray, int, str]:
        """(x, iterations, which method answered) on the normalised data."""
        if self.method == "cvxpy":
            import cvxpy as cp

            x = cp.Variable(d)
            program = cp.Problem(cp.Minimize(cp.norm1(x)), [A @ x == y])
            n_iter = _cvxpy_solve(program, self.cvxpy_solver)
            return np.asarray(x.value, dtype=float), n_iter, "cvxpy"
        note = "HiGHS LP"
        if self.method == "lars":
            x, n_steps, gap = homotopy_basis_pursuit(A, y)
            if gap <= CERTIFICATE_TOL:
                return x, n_steps, f"LARS homotopy, certified (relative duality gap {gap:.1e})"
            log.debug("homotopy end point not certified (relative gap %.2g): solving the LP", gap)
            note = (f"HiGHS LP: the LARS end point was not certified (relative duality gap {gap:.1e} > "
                    f"{CERTIFICATE_TOL:g})")
        x, n_iter = linear_program_basis_pursuit(A, y)
        return x, n_iter, note


def linear_program_basis_pursuit(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Basis pursuit as the LP min 1ᵀ(u + v) s.t. A(u − v) = y, u, v ≥ 0, by scipy's HiGHS: (x, iterations)."""
    d = A.shape[1]
    result = scipy.optimize.linprog(c=np.ones(2 * d), A_eq=np.hstack([A, -A]), b_eq=y, bounds=(0, None),
                                    method="highs")
    if result.status != 0:
        raise RuntimeError(f"HiGHS failed: {result.message}")
    return result.x[:d] - result.x[d:], int(result.nit)


def lars_scale(alpha: float, y: np.ndarray) -> float:
    """c such that scikit-learn's LARS, run on (A, c·y), stops within `PATH_END` (relative) of its target α:
    its stop is `LARS_STOP` absolute, and the path of (A, c·y) at c·α is c times the path of (A, y) at α.
    1 where α is 0 or c·y would not be finite (data far from normalised: left as they are)."""
    if not PATH_END * alpha > 0:
        return 1.0
    scale = LARS_STOP / (PATH_END * alpha)
    return scale if np.isfinite(scale * float(np.max(np.abs(y), initial=0.0))) else 1.0


def homotopy_basis_pursuit(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int, float]:
    """The Lasso path (LARS with drops, Efron et al. 2004; Osborne, Presnell & Turlach 2000) followed to λ = 0,
    and a certificate that its end point solves basis pursuit: (x, path steps, relative gap).

    scikit-learn's ``lars_path`` ends the path once α = ‖Aᵀr‖_∞/m falls below float32's ε, an absolute
    tolerance: on normalised data (‖y‖ = 1, unit columns) that is λ/λ_max ≈ 1e-4, where the path has often not
    reached its final active set (at 967 × 1000 its end point was uncertified in 4 of 7 instances and the LP,
    50-100x slower, took over). The path is therefore followed for y scaled so that this stop falls at
    λ/λ_max = `PATH_END` (the path is linear in y: x(cy) = c·x(y)), and scaled back.

    The certificate is weak duality: any ν with ‖Aᵀν‖_∞ ≤ 1 gives yᵀν ≤ min ‖x‖₁. Two candidates are tried, each
    scaled to ‖Aᵀν‖_∞ = 1: the residual r at the last knot λ > 0 (the path's own dual point), and where that
    is not enough the optimality condition of the end point's support S with signs s, the least-norm ν with
    A_Sᵀν = s (exact at a BP minimiser whose dual is unique; Fuchs 2004). The gap of a pair (x, ν) is
    max(‖x‖₁ − yᵀν, ‖Ax − y‖·‖ν‖) / ‖x‖₁ (the second term bounds the effect of the residual on the dual
    objective); it is 0 up to rounding when the end point is a minimiser, and any path that stops early or ends
    elsewhere gives a large gap (callers then solve the LP).

    The end point itself sits at λ = `PATH_END`·λ_max, so its residual is of that order, and at m ≈ d (where
    |S| reaches m) that residual alone kept the gap above `CERTIFICATE_TOL` (2.9e-9 on a 967 × 1000 instance,
    whose LP then cost 30-60 s). Where neither pair certifies, the primal is therefore also refitted: the least
    squares on S (`solvers._kernels.least_squares_on_support`), which solves A_S x_S = y to rounding when y lies
    in the span of A_S, paired with either dual point, and returned where its gap is the smaller (1.2e-14
    there). The returned gap is the smallest of these.
    """
    from sklearn.linear_model import lars_path

    m, d = A.shape
    scale = lars_scale(float(np.max(np.abs(A.T @ y), initial=0.0)) / m, y)  # α at λ_max, scikit-learn's units
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LARS warns on early stops and near-collinear steps: the gap catches both
        alphas, _, coefs = lars_path(A, scale * y, method="lasso", alpha_min=0.0, max_iter=10 * max(m, d))
    coefs = coefs / scale
    x, n_steps = coefs[:, -1], len(alphas) - 1
    if not np.any(x) or n_steps == 0:
        return x, n_steps, (0.0 if not np.any(y) else np.inf)
    knot = y - A @ coefs[:, -2]  # the residual at the last knot before the end point (its own is ~0)
    best = _duality_gap(A, y, x, knot)
    if best > CERTIFICATE_TOL:
        support = np.flatnonzero(x)
        # the least-norm ν with A_Sᵀν = sign(x_S): A_Sᵀ is |S| × m, and |S| ≤ m at a LARS end point
        signs = least_squares_on_support(A[:, support].T, np.sign(x[support]), np.arange(m))
        best = min(best, _duality_gap(A, y, x, signs))
        if best > CERTIFICATE_TOL:
            refit = least_squares_on_support(A, y, support)  # any primal point: the gap alone certifies it
            refit_gap = min(_duality_gap(A, y, refit, signs), _duality_gap(A, y, refit, knot))
            if refit_gap < best:
                x, best = refit, refit_gap
    return x, n_steps, best


def _duality_gap(A: np.ndarray, y: np.ndarray, x: np.ndarray, direction: np.ndarray) -> float:
    """Relative gap max(‖x‖₁ − yᵀν, ‖Ax − y‖·‖ν‖) / ‖x‖₁ of basis pursuit at x with the dual point ν = direction
    scaled to ‖Aᵀν‖_∞ = 1 (inf when the direction has no correlation with the columns or x = 0)."""
    correlation, l1 = float(np.max(np.abs(A.T @ direction))), float(np.abs(x).sum())
    if not (correlation > 0.0 and l1 > 0.0):
        return np.inf
    dual = direction / correlation
    return max(l1 - float(y @ dual), robust_norm(A @ x - y) * robust_norm(dual)) / l1


class Lasso(DirectSolver):
    """The Lasso / basis pursuit denoising (Tibshirani 1996): min ½‖Ax − y‖² + λ‖x‖₁.

    Parameters
    ----------
    lam : float, optional
        Regularisation λ > 0. ``None`` uses λ = lam_ratio · ‖Aᵀy‖_∞ (the smallest λ giving x = 0 is ‖Aᵀy‖_∞).
    lam_ratio : float
        Used when ``lam`` is None.
    method : {"lars", "cvxpy"}
        ``lars``: scikit-learn's LassoLars (exact homotopy; its α is λ/m); ``cvxpy``: the reference.
    cvxpy_solver : str, optional
        cvxpy back end; None takes the first installed of `OPEN_CVXPY_SOLVERS`.
    """

    name = "lasso"
    recovery_tol = None  # the ℓ1 penalty biases the estimate by O(λ)
    revision = 1  # 2026-12-03: LassoLars stopped short of λ on normalised data (a λ up to 2.5x too large)
    references = ("Tibshirani 1996, Regression shrinkage and selection via the lasso",
                  "Efron et al. 2004, Least angle regression")
    requires = frozenset({"least_squares"})

    def __init__(self, *, lam: float | None = None, lam_ratio: float = 1e-3, method: str = "lars",
                 cvxpy_solver: str | None = None, **common: Any):
        super().__init__(**common)
        self.lam = lam
        self.lam_ratio = lam_ratio
        self.method = method
        self.cvxpy_solver = cvxpy_solver

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        positive("lam", self.lam, allow_none=True, error=SolverConfigError)
        positive("lam_ratio", self.lam_ratio, error=SolverConfigError)
        if self.method not in ("lars", "cvxpy"):
            raise SolverConfigError(f"method={self.method!r} must be one of lars, cvxpy")

    def regularisation(self, problem: Problem) -> float:
        """λ used for this problem."""
        return self.lam if self.lam is not None else self.lam_ratio * float(np.max(np.abs(problem.A.T @ problem.y)))

    def solve(self, problem: Problem) -> tuple[np.ndarray, int]:
        (A, y), unscale = normalised(problem.A, problem.y)
        # ½‖Ax − y‖² + λ‖x‖₁ with A = aÃ, y = bỹ, x = (b/a)x̃ is b²·(½‖Ãx̃ − ỹ‖² + λ/(ab)·‖x̃‖₁)
        lam = self.regularisation(problem) / (unscale.a_scale * unscale.y_scale)
        x, n_iter = self._solve_normalised(A, y, lam)
        return unscale(x), n_iter

    def _solve_normalised(self, A: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, int]:
        m, d = A.shape
        if self.method == "cvxpy":
            import cvxpy as cp

            x = cp.Variable(d)
            program = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ x - y) + lam * cp.norm1(x)))
            n_iter = _cvxpy_solve(program, self.cvxpy_solver)
            return np.asarray(x.value, dtype=float), n_iter
        from sklearn.linear_model import LassoLars

        # LassoLars ends its path at a knot within float32's ε of α = λ/m (absolute, `LARS_STOP`) without
        # interpolating to λ: on normalised data (λ/m ~ 1e-7 at m = 1000 with the default lam_ratio) that is a
        # λ up to 2.5x too large, objectives 0.1-2% above the minimum (`lars_scale`); never scaled down
        scale = max(1.0, lars_scale(lam / m, y))
        model = LassoLars(alpha=scale * lam / m, fit_intercept=False, max_iter=10 * d)
        model.fit(A, scale * y)
        return np.asarray(model.coef_, dtype=float) / scale, int(np.max(model.n_iter_))
