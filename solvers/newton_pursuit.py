"""Newton-type hard-thresholding pursuits of Shenglong Zhou and co-authors: NHTP and GPNP.

Both pick a support T (|T| = k) from a gradient step and take a Newton step restricted to T, a k×k system
(`restricted_newton`), so they run with m < d and on any problem with a Hessian:

- `NHTP` (Zhou, Xiu & Qi 2021, Algorithm 1): T from x − η∇f(x), restricted Newton direction (the gradient
  direction when it is not a sufficient descent direction), Armijo line search.
- `GPNP` (Zhou 2022, Algorithm 1): projected gradient x⁺ = T_k(x − α∇f(x)) with Armijo backtracking on α;
  a Newton step on the support once the support repeats, kept when it decreases f enough.

Units. The published constants (η, γ, α₀, σ) are stated for the authors' data, A with unit-norm columns.
Both classes run the published algorithm on f/κ₀, with κ₀ = tr ∇²f(x₀)/d the mean Hessian diagonal
(`curvature_unit`; for least squares the mean squared column norm of A, so κ₀ = 1 on the authors' data):
every decision is then unchanged when A and y are rescaled, and the constants keep their published values.
Stopping tolerances are relative to ‖∇f(x₀)‖.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from problems.base import Problem
from problems.validation import integer, number, positive
from solvers._kernels import cholesky_factor, gradient_at, robust_norm, sparse_product, top_k_indices
from solvers.base import IterativeSolver, SolverConfigError, State

NHTP_REFERENCE = ("Zhou, Xiu & Qi 2021, Global and quadratic convergence of Newton hard-thresholding pursuit, "
                  "JMLR 22(12), Algorithm 1 (arXiv:1901.02763)")
GPNP_REFERENCE = ("Zhou 2022, Gradient projection Newton pursuit for sparsity constrained optimization, "
                  "Appl. Comput. Harmon. Anal. 61, Algorithm 1 (arXiv:2205.04580)")


# ---------------------------------------------------------------------------------------------- kernels
def curvature_unit(problem: Problem) -> float:
    """κ₀ = tr ∇²f(x₀)/d, the mean Hessian diagonal at the start (cached per instance).

    For least squares ‖A‖_F²/d (the key HTP's default step also reads); otherwise from ``problem.hessian``.
    """
    if "least_squares" in problem.capabilities:
        A = problem.A
        return problem.derived("frobenius_norm_squared", lambda: float(np.einsum("ij,ij->", A, A))) / problem.d
    return problem.derived("hessian_mean_diagonal_at_x0",
                           lambda: float(np.mean(np.diag(problem.hessian(problem.x0)))))


def objective_at(problem: Problem, x: np.ndarray) -> float:
    """f(x); for least squares ½‖Ax − y‖² with Ax from the columns on supp(x) (`sparse_product`)."""
    if "least_squares" in problem.capabilities:
        r = sparse_product(problem.A, x) - problem.y
        return 0.5 * float(r @ r)
    return float(problem.objective(x))


def hessian_blocks(problem: Problem, x: np.ndarray, rows: np.ndarray,
                   cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(∇²_{rows,rows} f(x), ∇²_{rows,cols} f(x)); for least squares A_rowsᵀA_rows and A_rowsᵀA_cols, formed
    from the columns of A alone (O(m·k²), no d×d matrix)."""
    if "least_squares" in problem.capabilities:
        A_rows = problem.A[:, rows]
        return A_rows.T @ A_rows, A_rows.T @ problem.A[:, cols]
    H = np.asarray(problem.hessian(x))
    return H[np.ix_(rows, rows)], H[np.ix_(rows, cols)]


def restricted_newton(H_TT: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """H_TT⁻¹·rhs by Cholesky (`cholesky_factor`); None when H_TT is not numerically positive definite (e.g.
    k > m, or two equal columns on T): the callers then fall back to their gradient step."""
    try:
        factor = cholesky_factor(H_TT)
    except (np.linalg.LinAlgError, ValueError):
        return None
    direction = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
    return direction if np.all(np.isfinite(direction)) else None


def stationarity_residual(x: np.ndarray, g: np.ndarray, T: np.ndarray, step: float) -> float:
    """Tol_η(x; T) of Zhou, Xiu & Qi (2021, Algorithm 1, Step 2) in gradient units, η = ``step`` (absolute):

        ‖(∇_T f(x), x_T̄/η)‖ + max(0, max_{i∉T} |∇_i f(x)| − min_{i∈T} |x_i|/η).

    Zero exactly when x is η-stationary with supp(x) ⊆ T, i.e. x = T_k(x − η∇f(x)): the fixed points of the
    hard-thresholded gradient step. (The paper's Tol_η, for f/κ₀ and times κ₀, has κ₀x_T̄ in the first block
    instead of x_T̄/η: the two agree at the default η = 1 in units of 1/κ₀, and x_T̄/η keeps the residual in
    the units of ∇f for any η. The second term uses min_{i∈T}|x_i| as the published code does.)
    """
    outside = np.ones(x.size, dtype=bool)
    outside[T] = False
    first = float(np.hypot(robust_norm(g[T]), robust_norm(x[outside]) / step))
    largest_outside = float(np.max(np.abs(g[outside]), initial=0.0))
    smallest_inside = float(np.min(np.abs(x[T]), initial=np.inf))
    return first + max(0.0, largest_outside - smallest_inside / step)


def thresholded(v: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The vector equal to v on T and 0 elsewhere."""
    out = np.zeros_like(v)
    out[T] = v[T]
    return out


class _ZhouPursuit(IterativeSolver):
    """Shared units, stopping rule and caches of NHTP and GPNP.

    Parameters
    ----------
    stationarity_tol : float
        The solver's own stopping rule: stop (status ``ok``) at the start of an iteration when the
        stationarity residual (`stationarity_residual`) is at most ``stationarity_tol``·‖∇f(x₀)‖.
    sigma : float
        Armijo / sufficient-decrease constant.
    max_backtracks : int
        Cap on the step halvings of one line search (the papers' searches are unbounded).
    **common
        ``k``, ``max_iter``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.
    """

    def __init__(self, *, stationarity_tol: float = 1e-6, sigma: float, max_backtracks: int, **common: Any):
        super().__init__(**common)
        self.stationarity_tol = stationarity_tol
        self.sigma = sigma
        self.max_backtracks = max_backtracks

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        positive("stationarity_tol", self.stationarity_tol, error=SolverConfigError)
        number("sigma", self.sigma, low=0.0, high=0.5, strict_low=True, strict_high=True, error=SolverConfigError)
        integer("max_backtracks", self.max_backtracks, low=0, error=SolverConfigError)

    def init(self, problem: Problem) -> State:
        state = super().init(problem)
        scale = curvature_unit(problem)
        if not np.isfinite(scale) or scale <= 0:
            raise SolverConfigError(f"{self.name}: the mean Hessian diagonal at x0 ({scale:.3g}) is not a positive "
                                    "finite number; check the scale of the data")
        g = gradient_at(problem, state.x)
        state.cache.update(scale=scale, f=objective_at(problem, state.x), g=g, g0_norm=robust_norm(g),
                           n_newton=0, n_gradient=0)
        return state

    def stationary(self, state: State, T: np.ndarray, step: float) -> bool:
        """Whether x (gradient cached) meets the stopping rule for support T and absolute step ``step``."""
        residual = stationarity_residual(state.x, state.cache["g"], T, step)
        return residual <= self.stationarity_tol * state.cache["g0_norm"]


# ------------------------------------------------------------------------------------------------- NHTP
class NHTP(_ZhouPursuit):
    """Newton hard-thresholding pursuit (Zhou, Xiu & Qi 2021, Algorithm 1).

    Parameters
    ----------
    eta : float
        η > 0 of the support selection, in units of 1/κ₀ (see the module docstring): the absolute step is
        η/κ₀. 1 is the default CSpack documents (``pars.eta``); NHTP.m itself, given no η, computes one from
        ∇f at the all-ones vector (1.5-2.4 on unit-column Gaussian designs, measured), which is not scale-free.
    gamma : float
        γ > 0 of the descent test of Step 3, in units of κ₀; published 1e-10.
    sigma : float
        Armijo σ ∈ (0, ½) of Step 4; published 5e-5.
    beta : float
        Armijo shrink β ∈ (0, 1); published 0.5.
    max_backtracks : int
        Step halvings per line search; the published code tries α = 1, …, β⁵ (5), then takes the
        thresholded gradient point [x − η∇f(x)]_T if f went up.
    stationarity_tol : float
        Stop when Tol_η(x; T) ≤ stationarity_tol·‖∇f(x₀)‖ (Step 2; published: an absolute 1e-6).
    max_iter : int
        Published 2000.
    **common
        ``k``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.

    Notes
    -----
    With g = ∇f(x_t), H = ∇²f(x_t), absolute step η' = η/κ₀:

    1. T = supp T_k(x_t − η'g)                                           (Step 1)
    2. stop if Tol_η(x_t; T) ≤ stationarity_tol·‖∇f(x₀)‖                  (Step 2, `stationarity_residual`)
    3. Newton direction (Step 3), the Newton step on the stationary equations F_η(x; T) = (∇_T f, x_T̄) = 0:
       H_TT d_T = H_{T,T̄} x_T̄ − g_T, d_T̄ = −x_T̄ (a k×k Cholesky solve); kept if
       ⟨g_T, d_T⟩ ≤ −γκ₀‖d_T‖² + κ₀‖x_T̄‖²/(4η), else the gradient direction d_T = −g_T/κ₀, d_T̄ = −x_T̄
       (−F_η); also when H_TT is not positive definite
    4. x_{t+1} = x(α), x(α)_T = x_T + αd_T, x(α)_T̄ = 0, with α = β^ℓ the first step of
       f(x(α)) ≤ f(x_t) + σα⟨g, d⟩ (Step 4, Armijo); ``step_size`` records α (the last tried); if f rose after
       ``max_backtracks`` halvings, x_{t+1} = (x_t − η'g) on T, 0 off T (the published code's safeguard)

    Under restricted strong convexity and smoothness, and η, γ small enough, the iterates converge to an
    η-stationary point; with a restricted-Lipschitz Hessian the rate is eventually quadratic and every step
    is the full Newton step (the paper's global and quadratic convergence theorems). On least squares, once
    T ⊇ supp(x*) the Newton point is x* itself (the least-squares fit on T whatever x_T̄), so a noiseless
    instance ends one or two steps after the support is found.
    ``state.cache`` counts the ``n_newton`` and ``n_gradient`` (fallback) directions taken.
    """

    name = "nhtp"
    references = (NHTP_REFERENCE,)

    def __init__(self, *, eta: float = 1.0, gamma: float = 1e-10, sigma: float = 5e-5, beta: float = 0.5,
                 max_backtracks: int = 5, max_iter: int = 2000, **common: Any):
        super().__init__(sigma=sigma, max_backtracks=max_backtracks, max_iter=max_iter, **common)
        self.eta = eta
        self.gamma = gamma
        self.beta = beta

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        positive("eta", self.eta, error=SolverConfigError)
        positive("gamma", self.gamma, error=SolverConfigError)
        number("beta", self.beta, low=0.0, high=1.0, strict_low=True, strict_high=True, error=SolverConfigError)

    def step(self, problem: Problem, state: State) -> State:
        x, cache = state.x, state.cache
        eta = self.eta / cache["scale"]
        u = x - eta * cache["g"]
        T = np.sort(top_k_indices(u, self.k_))
        if self.stationary(state, T, eta):
            state.finished = f"stationary: Tol_eta below stationarity_tol={self.stationarity_tol:g} (Step 2)"
            return state
        d_T, slope = self.direction(problem, state, T)
        alpha, x_new, f_new = self.line_search(problem, x, T, d_T, slope, cache["f"])
        if f_new > cache["f"]:  # the published code's safeguard: the thresholded gradient point instead
            x_new = thresholded(u, T)
            f_new = objective_at(problem, x_new)
        cache.update(f=f_new, g=gradient_at(problem, x_new))
        return State(x=x_new, step_size=alpha, cache=cache)

    def direction(self, problem: Problem, state: State, T: np.ndarray) -> tuple[np.ndarray, float]:
        """d_T of Step 3 (Newton, or the gradient direction when the descent test fails) and the slope
        ⟨∇f(x), d⟩ with d_T̄ = −x_T̄."""
        x, g, scale = state.x, state.cache["g"], state.cache["scale"]
        off = np.setdiff1d(np.flatnonzero(x), T)  # supp(x) \ T: where d_T̄ = −x_T̄ is nonzero
        x_off = x[off]
        H_TT, H_Toff = hessian_blocks(problem, x, T, off)
        d_T = restricted_newton(H_TT, H_Toff @ x_off - g[T])
        bound = scale * (float(x_off @ x_off) / (4.0 * self.eta) - self.gamma * float(d_T @ d_T)) \
            if d_T is not None else -np.inf
        newton = d_T is not None and float(g[T] @ d_T) <= bound
        if not newton:
            d_T = -g[T] / scale
        state.cache["n_newton" if newton else "n_gradient"] += 1
        return d_T, float(g[T] @ d_T - g[off] @ x_off)

    def line_search(self, problem: Problem, x: np.ndarray, T: np.ndarray, d_T: np.ndarray, slope: float,
                    f: float) -> tuple[float, np.ndarray, float]:
        """Armijo (Step 4) on x(α) = (x_T + αd_T, 0): the first α = β^ℓ, ℓ ≤ max_backtracks, that passes, or
        the last one tried."""
        alpha = 1.0
        for trial in range(self.max_backtracks + 1):
            if trial:
                alpha *= self.beta
            x_new = thresholded(x, T)
            x_new[T] += alpha * d_T
            f_new = objective_at(problem, x_new)
            if f_new <= f + self.sigma * alpha * slope:
                break
        return alpha, x_new, f_new


# ------------------------------------------------------------------------------------------------- GPNP
class GPNP(_ZhouPursuit):
    """Gradient projection Newton pursuit (Zhou 2022, Algorithm 1).

    Parameters
    ----------
    alpha0 : float
        First trial step of every line search, in units of 1/κ₀ (the absolute step is α₀/κ₀); published 5
        (CSpack and SCOpack ``set_parameters``, for d < 10⁴).
    gamma : float
        Step shrink factor γ ∈ (0, 1); published 0.5.
    sigma : float
        Sufficient-decrease σ ∈ (0, ½), in units of κ₀: a trial u is accepted when
        f(u) ≤ f(x) − (σκ₀/2)‖u − x‖²; 1e-4 as in CSpack's GPNP for CS, which tests
        ‖Au − b‖² < ‖Ax − b‖² − σ‖u − x‖² (the general SCOpack GPNP uses f(u) < f(x) − 1e-8‖u − x‖²).
    max_backtracks : int
        Shrinks per line search (the paper's search is unbounded); after the last one its trial is taken.
    stationarity_tol : float
        Stop when x is α₀-stationary up to stationarity_tol·‖∇f(x₀)‖ (`stationarity_residual` on Γ_t); the
        published codes stop on ‖∇_Γ f‖ < 1e-6 (SCOpack; 1e-10 in CSpack) together with a stalled objective.
    max_iter : int
        Published 10⁴ (d ≤ 1000).
    **common
        ``k``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.

    Notes
    -----
    With g = ∇f(x_t), Γ_t the support of x_t:

    1. gradient projection: u = T_k(x_t − αg), α = α₀γ^q/κ₀ for the first q with
       f(u) ≤ f(x_t) − (σκ₀/2)‖u − x_t‖²; Γ = supp(u) (the k selected indices); ``step_size`` records α
    2. Newton pursuit, only when Γ = Γ_t: v_Γ = u_Γ − ∇²_ΓΓf(u)⁻¹∇_Γf(u), v_Γ̄ = 0 (a k×k Cholesky solve;
       skipped when the block is not positive definite); x_{t+1} = v if f(v) ≤ f(u) − (σκ₀/2)‖v − u‖²,
       else x_{t+1} = u

    Γ_0 = supp T_k(x_0 − α₀∇f(x_0)/κ₀) (for x_0 = 0 the published code's top-k of |∇f(0)|), so the first
    iteration may already take a Newton step. The paper proves global convergence to an α-stationary point
    and an eventually quadratic rate under restricted strong convexity / smoothness and a restricted
    Lipschitz Hessian. On least squares the Newton point is the least-squares fit on Γ.
    ``state.cache`` counts the Newton steps kept (``n_newton``) and the gradient-projection points kept
    (``n_gradient``).
    """

    name = "gpnp"
    references = (GPNP_REFERENCE,)

    def __init__(self, *, alpha0: float = 5.0, gamma: float = 0.5, sigma: float = 1e-4, max_backtracks: int = 50,
                 max_iter: int = 10_000, **common: Any):
        super().__init__(sigma=sigma, max_backtracks=max_backtracks, max_iter=max_iter, **common)
        self.alpha0 = alpha0
        self.gamma = gamma

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        positive("alpha0", self.alpha0, error=SolverConfigError)
        number("gamma", self.gamma, low=0.0, high=1.0, strict_low=True, strict_high=True, error=SolverConfigError)

    def init(self, problem: Problem) -> State:
        state = super().init(problem)
        alpha = self.alpha0 / state.cache["scale"]
        state.cache["support"] = np.sort(top_k_indices(state.x - alpha * state.cache["g"], self.k_))
        return state

    def step(self, problem: Problem, state: State) -> State:
        cache = state.cache
        if self.stationary(state, cache["support"], self.alpha0 / cache["scale"]):
            state.finished = f"stationary: alpha0-stationary up to stationarity_tol={self.stationarity_tol:g}"
            return state
        alpha, support, u, f_u = self.projected_gradient(problem, state)
        x_new, f_new, g_new = u, f_u, None
        if np.array_equal(support, cache["support"]):
            g_new = gradient_at(problem, u)
            v = self.newton_point(problem, u, g_new, support)
            if v is not None:
                f_v = objective_at(problem, v)
                if f_v <= f_u - 0.5 * self.sigma * cache["scale"] * float(np.sum((v - u) ** 2)):
                    x_new, f_new, g_new = v, f_v, None
        cache["n_gradient" if x_new is u else "n_newton"] += 1
        cache.update(support=support, f=f_new, g=gradient_at(problem, x_new) if g_new is None else g_new)
        return State(x=x_new, step_size=alpha, cache=cache)

    def projected_gradient(self, problem: Problem, state: State) -> tuple[float, np.ndarray, np.ndarray, float]:
        """(α, Γ, u, f(u)) of step 1: the first α = α₀γ^q/κ₀ that decreases f enough, or the last tried."""
        x, cache = state.x, state.cache
        alpha = self.alpha0 / cache["scale"]
        for trial in range(self.max_backtracks + 1):
            if trial:
                alpha *= self.gamma
            w = x - alpha * cache["g"]
            support = np.sort(top_k_indices(w, self.k_))
            u = thresholded(w, support)
            f_u = objective_at(problem, u)
            if f_u <= cache["f"] - 0.5 * self.sigma * cache["scale"] * float(np.sum((u - x) ** 2)):
                break
        return alpha, support, u, f_u

    @staticmethod
    def newton_point(problem: Problem, u: np.ndarray, g: np.ndarray, support: np.ndarray) -> np.ndarray | None:
        """v = (u_Γ − ∇²_ΓΓf(u)⁻¹∇_Γf(u), 0), or None when the block is not positive definite."""
        H, _ = hessian_blocks(problem, u, support, support[:0])
        d = restricted_newton(H, -g[support])
        if d is None:
            return None
        v = thresholded(u, support)
        v[support] += d
        return v
