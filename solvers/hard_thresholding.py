"""Hard-thresholding methods: iterative hard thresholding (IHT) and its variants NIHT, HTP and stochastic IHT."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from problems.base import Problem
from solvers._kernels import (gradient_at, hard_threshold, least_squares_on_support, minibatch_rows, sparse_product,
                              top_k_indices)
from problems.validation import positive
from solvers.base import IterativeSolver, SolverConfigError, State

log = logging.getLogger(__name__)

#: NIHT safeguard shrinks before it gives up; with the defaults μ has then shrunk by (κ(1−c))⁶⁰ = 1.98⁶⁰ ≈ 6·10¹⁷.
MAX_BACKTRACKS = 60


class FixedStepSolver(IterativeSolver):
    """A method with a fixed gradient step η: ``step_size`` if given, else η = step_scale / L, L = λ_max(∇²f)
    computed once per run (scale-free: rescaling A and y leaves the iterates' supports unchanged).

    Parameters
    ----------
    step_size : float, optional
        Absolute step; ``None`` uses ``step_scale`` / L.
    step_scale : float
        Multiplier of 1/L when ``step_size`` is None.
    **common
        ``k``, ``max_iter``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.
    """

    def __init__(self, *, step_size: float | None = None, step_scale: float = 1.0, **common: Any):
        super().__init__(**common)
        self.step_size = step_size
        self.step_scale = step_scale

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        positive("step_size", self.step_size, allow_none=True, error=SolverConfigError)
        positive("step_scale", self.step_scale, error=SolverConfigError)

    def fixed_step(self, problem: Problem) -> float:
        """The step η used on ``problem``: ``step_size``, else ``step_scale``/L (also read by `solvers.bounds`)."""
        return self.step_size if self.step_size is not None else self.step_scale / problem.smoothness()

    def init(self, problem: Problem) -> State:
        state = super().init(problem)
        state.step_size = self.fixed_step(problem)
        if not np.isfinite(state.step_size) or state.step_size <= 0:
            raise SolverConfigError(f"the default step 1/L is not positive (L={problem.smoothness():.3g})")
        return state


class IHT(FixedStepSolver):
    """Iterative hard thresholding, x_{t+1} = T_k(x_t − η ∇f(x_t)).

    Parameters
    ----------
    step_size : float, optional
        Fixed step size η. ``None`` uses η = step_scale / L with L = λ_max(∇²f) computed once per run
        (the paper's k-IHT baseline uses η = 1/λ_max(H), §4.1).
    step_scale : float
        Multiplier of 1/L when ``step_size`` is None (the paper's code effectively uses 2/n, notes §4.3).
    **common
        ``k``, ``max_iter``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.

    Notes
    -----
    Lemma 1 of Wu et al. (2024) shows this is the exact minimiser of the linear model plus the proximal
    term (1/2η)‖x − x_t‖² over k-sparse x. Blumensath & Davies (2009) prove linear convergence under RIP.
    Cost per iteration: one gradient and an O(d) selection; for least squares Aᵀ(Ax − y), where Ax of the
    k-sparse iterate reads only k columns of A (`sparse_product`), so an iteration costs about one dense
    matrix-vector product.
    """

    name = "iht"
    references = ("Blumensath & Davies 2009, Iterative hard thresholding for compressed sensing",
                  "Wu et al. 2024, The Iterative Optimal Brain Surgeon, Lemma 1")

    def step(self, problem: Problem, state: State) -> State:
        eta = state.step_size
        return State(x=hard_threshold(state.x - eta * gradient_at(problem, state.x), self.k_), step_size=eta)


def minibatch_generator(problem: Problem, seed: int | None) -> np.random.Generator:
    """The minibatch RNG of a run: from ``seed``, or, when None, from the problem's seed (so a sweep over
    ``seed`` draws different minibatches, and the same run is reproducible)."""
    return np.random.default_rng([problem.seed, 0x5EED] if seed is None else seed)


def minibatch_size(problem: Problem, batch_size: Any, seed: Any) -> int:
    """Check the minibatch parameters shared by the stochastic solvers and return the batch size used:
    ``batch_size`` capped at the number of samples (a batch of all rows is the full gradient)."""
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise SolverConfigError(f"batch_size={batch_size} must be an integer >= 1")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise SolverConfigError(f"seed={seed} must be a non-negative integer")
    return int(min(batch_size, problem.n_samples))


def minibatch_gradient(problem: Problem, x: np.ndarray, state: State, batch_size: int) -> np.ndarray:
    """Unbiased minibatch gradient of a finite-sum problem, rows drawn by the run's generator in ``state``."""
    rows = minibatch_rows(state.cache["rng"], problem.n_samples, batch_size)
    return problem.sample_gradient(x, rows)


class StochasticIHT(IHT):
    """Stochastic IHT, x_{t+1} = T_k(x_t − η g_t) with g_t an unbiased minibatch gradient.

    Parameters
    ----------
    batch_size : int
        Rows per minibatch, drawn without replacement, a fresh draw every iteration (capped at the number of
        samples; the size used is ``batch_size_``).
    seed : int, optional
        Seed of the run's own ``np.random.Generator`` for the minibatches (the same seed gives the same run);
        None derives it from the problem's seed, so a sweep over seeds also varies the minibatches.
    step_size, step_scale, **common
        As in `IHT` (default η = step_scale / L with L the full-batch smoothness constant).

    Notes
    -----
    The baseline Wu et al. (2024, §3.3) attribute to AC/DC (Peste et al. 2021): Lemma 1 with ∇f replaced by a
    stochastic gradient. Needs a finite-sum problem (``sample_gradient``). No step-size decay: on noiseless
    (interpolating) instances every per-sample gradient vanishes at x*, so a constant step converges.
    """

    name = "stochastic_iht"
    deterministic = False  # minibatches: x_{t+1} depends on a random draw, not on x_t alone
    references = ("Peste et al. 2021, AC/DC: Alternating compressed/decompressed training of deep neural networks",
                  "Wu et al. 2024, The Iterative Optimal Brain Surgeon, §3.3")
    requires = frozenset({"finite_sum"})

    def __init__(self, *, batch_size: int = 32, seed: int | None = None, **common: Any):
        super().__init__(**common)
        self.batch_size = batch_size
        self.seed = seed

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        self.batch_size_ = minibatch_size(problem, self.batch_size, self.seed)

    def init(self, problem: Problem) -> State:
        state = super().init(problem)
        state.cache["rng"] = minibatch_generator(problem, self.seed)
        return state

    def step(self, problem: Problem, state: State) -> State:
        eta = state.step_size
        g = minibatch_gradient(problem, state.x, state, self.batch_size_)
        return State(x=hard_threshold(state.x - eta * g, self.k_), step_size=eta, cache=state.cache)


class NIHT(IterativeSolver):
    """Normalized IHT (Blumensath & Davies 2010, Algorithm 2): IHT with an adaptive, safeguarded step.

    Parameters
    ----------
    c : float
        Safeguard margin in (0, 1): a support-changing step is accepted only if
        μ ≤ ω = (1 − c)‖x̃ − x‖² / ‖A(x̃ − x)‖².
    kappa : float
        Shrink factor, μ ← μ / (κ(1 − c)); must exceed 1/(1 − c) so that every shrink reduces μ.
    **common
        ``k``, ``max_iter``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.

    Notes
    -----
    With g = Aᵀ(y − Ax_t) and Γ = supp(x_t) (Γ = supp T_k(Aᵀ(y − Ax_0)) when x_0 = 0):

    1. μ = ‖g_Γ‖² / ‖A g_Γ‖²                       (exact line search along g restricted to Γ)
    2. x̃ = T_k(x_t + μ g)
    3. if supp(x̃) ≠ Γ: while μ > ω: μ ← μ/(κ(1−c)), x̃ ← T_k(x_t + μ g)
    4. x_{t+1} = x̃

    If g_Γ = 0 (x_t is least-squares optimal on its support but not stationary) μ is computed from the full g
    instead of 0/0. Needs a least-squares problem. The defaults c = 0.01, κ = 2 are our choice.
    """

    name = "niht"
    references = ("Blumensath & Davies 2010, "
                  "Normalized iterative hard thresholding: guaranteed stability and performance",)
    requires = frozenset({"least_squares"})

    def __init__(self, *, c: float = 0.01, kappa: float = 2.0, **common: Any):
        super().__init__(**common)
        self.c = c
        self.kappa = kappa

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        if not isinstance(self.c, (int, float)) or not 0.0 < self.c < 1.0:
            raise SolverConfigError(f"c={self.c} must lie in (0, 1)")
        if not isinstance(self.kappa, (int, float)) or not self.kappa * (1.0 - self.c) > 1.0:
            raise SolverConfigError(f"kappa={self.kappa} must exceed 1/(1 - c) = {1.0 / (1.0 - self.c):.4g}")

    def step(self, problem: Problem, state: State) -> State:
        x, A = state.x, problem.A
        g = -gradient_at(problem, x)
        if not np.any(g):
            return State(x=x, step_size=0.0)
        gamma = np.flatnonzero(x) if np.any(x) else top_k_indices(g, self.k_)
        g_gamma = np.zeros_like(g)
        g_gamma[gamma] = g[gamma]
        direction = g_gamma if np.any(g_gamma) else g
        Ad = sparse_product(A, direction)
        mu = float(direction @ direction) / float(Ad @ Ad)
        x_new = hard_threshold(x + mu * g, self.k_)
        if not np.array_equal(np.flatnonzero(x_new), np.sort(gamma)):
            mu, x_new = self._safeguard(A, x, g, mu, x_new)
        return State(x=x_new, step_size=mu)

    def _safeguard(self, A: np.ndarray, x: np.ndarray, g: np.ndarray, mu: float,
                   x_new: np.ndarray) -> tuple[float, np.ndarray]:
        """Shrink μ until the support-changing step satisfies μ ≤ ω."""
        for _ in range(MAX_BACKTRACKS):
            dx = x_new - x
            Adx = sparse_product(A, dx)
            denominator = float(Adx @ Adx)
            if denominator == 0.0 or mu <= (1.0 - self.c) * float(dx @ dx) / denominator:
                return mu, x_new
            mu /= self.kappa * (1.0 - self.c)
            x_new = hard_threshold(x + mu * g, self.k_)
        log.warning("NIHT safeguard did not accept a step after %d shrinks; taking mu=%.3g", MAX_BACKTRACKS, mu)
        return mu, x_new


class HTP(FixedStepSolver):
    """Hard thresholding pursuit (Foucart 2011, Algorithm HTP(μ)).

    Parameters
    ----------
    step_size : float, optional
        Absolute μ of the support-selection step. Foucart's HTP uses μ = 1 for A with columns of unit norm on
        average; on data with other column scales (e.g. standardised to unit variance, norms √n) μ = 1 is far
        too long and the support alternates between two sets. ``None`` (the default) uses Foucart's rule in
        the units of the data: μ = step_scale · d/‖A‖_F², i.e. step_scale over the mean squared column norm,
        which is μ = 1 for Foucart's normalisation and does not change when A and y are rescaled. (The other
        scale-free choice, 1/L, is conservative in compressed sensing: with A ~ N(0, 1/m), m = 100, d = 256
        HTP then stops at a wrong support after one repeat on most seeds.)
    step_scale : float
        Multiplier of the default step when ``step_size`` is None.
    **common
        ``k``, ``max_iter``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.

    Notes
    -----
    1. S_{t+1} = supp T_k(x_t + μ Aᵀ(y − Ax_t))
    2. x_{t+1} = argmin_{supp(z) ⊆ S_{t+1}} ‖y − Az‖²      (`least_squares_on_support`)

    Foucart's natural stopping rule: when S_{t+1} = S_t (after a first least-squares fit) the next point would
    equal x_t, so the run stops with status ``ok`` without recording it. S_t is the index set the fit was
    computed on (kept in the state), not the nonzeros of x_t, so a coefficient that happens to be exactly 0
    (e.g. y = 0) cannot hide a repeat.
    """

    name = "htp"
    references = ("Foucart 2011, Hard thresholding pursuit: an algorithm for compressive sensing",)
    requires = frozenset({"least_squares"})

    def fixed_step(self, problem: Problem) -> float:
        """μ on ``problem``: ``step_size``, else step_scale · d/‖A‖_F² (also read by `solvers.bounds`)."""
        if self.step_size is not None:
            return self.step_size
        # an instance constant (read every iteration by the bounds): computed once per problem, like L
        A = problem.A
        frobenius2 = problem.derived("frobenius_norm_squared", lambda: float(np.einsum("ij,ij->", A, A)))
        return self.step_scale * problem.d / frobenius2

    def step(self, problem: Problem, state: State) -> State:
        mu = state.step_size
        support = np.sort(top_k_indices(state.x - mu * gradient_at(problem, state.x), self.k_))
        if np.array_equal(support, state.cache.get("support")):
            state.finished = "support unchanged (Foucart's stopping rule)"
            return state
        return State(x=least_squares_on_support(problem.A, problem.y, support), step_size=mu,
                     cache={"support": support})
