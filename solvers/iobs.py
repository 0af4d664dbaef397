"""The Iterative Optimal Brain Surgeon family (Wu, Modoranu, Safaryan, Kuznedelev & Alistarh, NeurIPS 2024).

Every deterministic variant takes the dense Newton point θ⁺ = θ_t − H_t⁻¹∇f(θ_t) of the local quadratic model
(paper eq. 8) and differs in how it chooses the kept support Q (|Q| = k) and the weights on it:

- `TopkIOBS`  (Algorithm 1, Option 1, eq. 12): Q = supp T_k(θ⁺), no weight correction.
- `ExactIOBS` (Algorithm 1, Option 2, Lemma 2): the best Q by exhaustive search, OBS-corrected weights.
- `OBSIOBS`   (OBC-style approximation of Option 2): Q greedily or by Top-k, OBS-corrected weights.

`StochasticIOBS` (App. B.1, Lemma 4) is first order: IHT with an adaptive scalar step.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from problems.base import Problem
from problems.conditioning import structurally_singular
from solvers._kernels import cholesky_factor, gradient_at, hard_threshold, quadratic_model_on_support, top_k_indices
from problems.validation import positive
from solvers.base import IterativeSolver, SolverConfigError, State
from solvers.hard_thresholding import minibatch_generator, minibatch_gradient, minibatch_size

REFERENCE = "Wu, Modoranu, Safaryan, Kuznedelev & Alistarh 2024, The Iterative Optimal Brain Surgeon"
SUPPORT_RULES = ("greedy", "topk")

#: Subsets scored per batched solve in `exact_obs_support` (bounds memory at ~chunk·s² floats).
SUBSET_CHUNK = 4096


@dataclass
class Curvature:
    """The (damped) Hessian H = ∇²f(θ) + λI with its Cholesky factor; H⁻¹ is formed only if asked for."""

    H: np.ndarray
    factor: tuple[np.ndarray, bool]

    def solve(self, v: np.ndarray) -> np.ndarray:
        """H⁻¹v."""
        return scipy.linalg.cho_solve(self.factor, v)

    @functools.cached_property
    def Hinv(self) -> np.ndarray:
        """The explicit inverse H⁻¹ (exact and greedy OBS need its entries)."""
        return self.solve(np.eye(self.H.shape[0]))


class _SecondOrderSolver(IterativeSolver):
    """Shared Hessian handling of the Newton-type I-OBS variants.

    Parameters
    ----------
    damping : float
        λ ≥ 0 added to the Hessian as λI; needed when ∇²f is singular, e.g. least squares with fewer
        measurements than unknowns. Absolute, unlike the paper's DNN "Hessian dampening" (App. A.1), which
        follows SparseGPT and is relative to the mean Hessian diagonal.
    **common
        ``k``, ``max_iter``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.

    Notes
    -----
    A constant Hessian (``problem.hessian_is_constant``) is factorised once, in ``init``, and kept in the
    state cache; otherwise once per iteration. ``state.cache["n_factorizations"]`` counts the factorisations.
    The damped Hessian ∇²f(θ) + λI is written into one d×d workspace per run (``state.cache["hessian_buffer"]``)
    instead of allocating λI and the sum every iteration.
    """

    #: The damping's parameter name in messages (subclasses that follow another paper's notation rename it).
    damping_name: str = "damping"

    def __init__(self, *, damping: float = 0.0, **common: Any):
        super().__init__(**common)
        self.damping = damping

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        if not isinstance(self.damping, (int, float, np.integer, np.floating)) or not 0 <= self.damping < np.inf:
            raise SolverConfigError(f"damping={self.damping} must be a finite number >= 0")

    def init(self, problem: Problem) -> State:
        state = super().init(problem)
        state.step_size = 1.0
        state.cache["n_factorizations"] = 0
        if problem.hessian_is_constant:
            state.cache["curvature"] = self._factorise(problem, state)
        return state

    def curvature(self, problem: Problem, state: State) -> Curvature:
        """The curvature at ``state.x``: the cached one for constant Hessians, a fresh one otherwise."""
        cached = state.cache.get("curvature")
        return cached if cached is not None else self._factorise(problem, state)

    def _factorise(self, problem: Problem, state: State) -> Curvature:
        H = self._damped_hessian(problem, state)
        try:
            if not self.damping and structurally_singular(problem):  # decided by shape, not by rounding
                raise np.linalg.LinAlgError(f"AᵀA has rank <= m={problem.m} < d={problem.d}")
            factor = cholesky_factor(H)
        except np.linalg.LinAlgError:
            raise SolverConfigError(
                f"{self.name}: the Hessian + {self.damping_name}*I ({self.damping_name}={self.damping:g}) is not "
                f"positive definite; set {self.damping_name} > 0") from None
        state.cache["n_factorizations"] += 1
        return Curvature(H=H, factor=factor)

    def _damped_hessian(self, problem: Problem, state: State) -> np.ndarray:
        """∇²f(θ) + λI; with λ > 0 written in place into the run's workspace (allocated on first use)."""
        H = np.asarray(problem.hessian(state.x))
        if not self.damping:
            return H
        buffer = state.cache.get("hessian_buffer")
        if buffer is None:
            buffer = state.cache["hessian_buffer"] = np.empty_like(H, dtype=float)
        np.copyto(buffer, H)
        buffer.flat[::problem.d + 1] += self.damping
        return buffer

    def newton_point(self, problem: Problem, state: State, scale: float = 1.0) -> tuple[np.ndarray, Curvature]:
        """θ⁺ = θ − scale·H⁻¹∇f(θ) and the curvature it used (Algorithm 1, first line of the loop)."""
        curvature = self.curvature(problem, state)
        return state.x - scale * curvature.solve(gradient_at(problem, state.x)), curvature


class TopkIOBS(_SecondOrderSolver):
    """Topk-I-OBS, θ_{t+1} = T_k(θ_t − γ H_t⁻¹ ∇f(θ_t))  (Wu et al. 2024, eq. 12; Algorithm 1, Option 1).

    Parameters
    ----------
    newton_step : float
        γ > 0. γ = 1 is the paper's exact Newton step (Lemma 3: local quadratic rate). The paper's Figure 1
        code differentiates the MSE (1/n)‖Xθ − y‖² but inverts XᵀX, which for f = ½‖Xθ − y‖² is γ = 2/n
        (notes §4.3); that damped step gives the slow curves of Figure 1a.
    damping, **common
        See `_SecondOrderSolver`.

    Notes
    -----
    Also called "Topk-OBS" (§3.6 title) and "Topk-WoodTaylor" (Figure 1 caption). Per iteration: one gradient,
    one Cholesky solve, an O(d) selection; plus one O(d³) factorisation per run (constant Hessian) or per
    iteration (otherwise).
    """

    name = "topk_iobs"
    references = (REFERENCE + ", eq. 12 and Lemma 3",)

    def __init__(self, *, newton_step: float = 1.0, **common: Any):
        super().__init__(**common)
        self.newton_step = newton_step

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        positive("newton_step", self.newton_step, error=SolverConfigError)

    def step(self, problem: Problem, state: State) -> State:
        theta_plus, _ = self.newton_point(problem, state, self.newton_step)
        return State(x=hard_threshold(theta_plus, self.k_), step_size=self.newton_step, cache=state.cache)


def _subset_quadratic_forms(M: np.ndarray, v: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """v_Sᵀ (M_SS)⁻¹ v_S for every row S of ``subsets`` (shape (B, s)), by one batched solve."""
    blocks = M[subsets[:, :, None], subsets[:, None, :]]
    rhs = v[subsets]
    return np.einsum("bs,bs->b", rhs, np.linalg.solve(blocks, rhs[..., None])[..., 0])


def exact_obs_support(theta_plus: np.ndarray, curvature: Curvature, k: int) -> tuple[np.ndarray, float]:
    """The kept set Q* of Algorithm 1, Option 2, by exhaustive search, and its saliency.

    Returns the sorted Q* minimising the multi-weight OBS saliency ρ(S) = θ⁺ᵀH^Sθ⁺ = θ⁺_Sᵀ[(H⁻¹)_SS]⁻¹θ⁺_S
    over |S| = d − k (S = [d] \\ Q), and ρ(S*). Enumerates whichever of Q or S is smaller: with b = Hθ⁺, the
    Schur-complement identity ρ(S) = θ⁺ᵀHθ⁺ − b_Qᵀ H_QQ⁻¹ b_Q scores a kept set by a k×k solve, while the
    pruned-set form needs a (d−k)×(d−k) solve on H⁻¹. Ties go to the first set in lexicographic order.
    """
    d = theta_plus.size
    if k >= d:
        return np.arange(d), 0.0
    by_kept = k <= d - k
    size = k if by_kept else d - k
    if by_kept:
        b = curvature.H @ theta_plus
        M, v, total = curvature.H, b, float(theta_plus @ b)
    else:
        M, v, total = curvature.Hinv, theta_plus, 0.0
    combos = itertools.combinations(range(d), size)
    best, best_set = np.inf, None
    while True:
        flat = np.fromiter(itertools.chain.from_iterable(itertools.islice(combos, SUBSET_CHUNK)), dtype=np.intp)
        if flat.size == 0:
            break
        subsets = flat.reshape(-1, size)
        forms = _subset_quadratic_forms(M, v, subsets)
        saliency = total - forms if by_kept else forms
        i = int(np.argmin(saliency))
        if saliency[i] < best:
            best, best_set = float(saliency[i]), subsets[i]
    if by_kept:
        return np.array(best_set), best
    return np.setdiff1d(np.arange(d), best_set), best


class ExactIOBS(_SecondOrderSolver):
    """Exact I-OBS (Wu et al. 2024, Algorithm 1, Option 2): the exact k-sparse minimiser of the local model.

    Parameters
    ----------
    max_subsets : int
        Refuse (``SolverConfigError``) when the C(d, k) candidate supports exceed this number.
    damping, **common
        See `_SecondOrderSolver`.

    Notes
    -----
    θ⁺ = θ_t − H_t⁻¹∇f(θ_t);  S_{t+1} = argmin_{|S| = d−k} θ⁺ᵀH_t^Sθ⁺ with H^S = I_Sᵀ(I_S H⁻¹ I_Sᵀ)⁻¹I_S;
    θ_{t+1} = (I − H_t⁻¹H_t^{S})θ⁺. By Lemma 2 this solves eq. 8 exactly when H_t ≻ 0; Theorem 1 gives its
    local quadratic rate. The corrected weights are computed as H_QQ⁻¹(Hθ⁺)_Q (`quadratic_model_on_support`),
    the same vector with exact zeros on S. The search is exponential (`exact_obs_support`): tiny d only.
    """

    name = "iobs_exact"
    # On a quadratic the step is the best k-subset of the least-squares fit, which rescaling a column changes
    # only by rescaling that coefficient.
    invariances = frozenset({"global", "columns"})
    references = (REFERENCE + ", Algorithm 1 (Option 2), Lemma 2 and Theorem 1",)

    def __init__(self, *, max_subsets: int = 100_000, **common: Any):
        super().__init__(**common)
        self.max_subsets = max_subsets

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        if not isinstance(self.max_subsets, (int, np.integer)) or self.max_subsets < 1:
            raise SolverConfigError(f"max_subsets={self.max_subsets} must be an integer >= 1")
        count = math.comb(problem.d, self.k_)
        if count > self.max_subsets:
            raise SolverConfigError(f"iobs_exact would search C({problem.d}, {self.k_}) = {count} supports, more than "
                                    f"max_subsets={self.max_subsets}; use iobs_obs or raise max_subsets")

    def step(self, problem: Problem, state: State) -> State:
        theta_plus, curvature = self.newton_point(problem, state)
        keep, saliency = exact_obs_support(theta_plus, curvature, self.k_)
        state.cache["saliency"] = saliency  # the model increase ½·ρ(S*) caused by pruning, for inspection
        x = quadratic_model_on_support(curvature.H, curvature.H @ theta_plus, keep)
        return State(x=x, step_size=1.0, cache=state.cache)


def obc_prune(theta_plus: np.ndarray, Hinv: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy OBS pruning of θ⁺ down to k weights (OBC, Frantar & Alistarh 2022, Algorithm 1).

    Each round removes p = argmin_{i alive} w_i²/[H⁻¹]_ii (the OBS saliency), applies the OBS correction
    w ← w − w_p H⁻¹e_p/[H⁻¹]_pp, and downdates H⁻¹ ← H⁻¹ − H⁻¹e_p e_pᵀH⁻¹/[H⁻¹]_pp, which is the inverse of
    the Hessian restricted to the remaining weights (padded with zeros). Each round is one exact I-OBS step
    with zero gradient and budget (#alive − 1) on the restricted problem (paper §3.4). O(d²) per round.

    Returns the pruned weights (exact zeros on the pruned set) and the pruned indices in removal order.
    """
    w = np.array(theta_plus, dtype=float)
    Hinv = np.array(Hinv, dtype=float, order="C")
    diag = np.diag(Hinv).copy()
    alive = np.ones(w.size, dtype=bool)
    order = np.empty(w.size - k, dtype=np.intp)
    for r in range(w.size - k):
        saliency = np.full(w.size, np.inf)
        np.divide(w**2, diag, out=saliency, where=alive)
        p = int(np.argmin(saliency))
        column, pivot = Hinv[:, p].copy(), Hinv[p, p]
        w -= (w[p] / pivot) * column
        # numpy, not BLAS ger: a threaded level-2 call per round stalls on busy machines
        Hinv -= np.multiply.outer(column, column / pivot)
        diag -= column**2 / pivot
        w[p], alive[p], order[r] = 0.0, False, p
    return w, order


class OBSIOBS(_SecondOrderSolver):
    """OBS-corrected I-OBS for any d: an approximation of Option 2 with a cheap support rule.

    Parameters
    ----------
    support : {"greedy", "topk"}
        ``greedy``: S chosen by OBC, removing one weight at a time by the OBS saliency with rank-one downdates
        of H⁻¹ (`obc_prune`), O(d²(d − k)) per iteration. ``topk``: Q = supp T_k(θ⁺), Topk-I-OBS's support.
    damping, **common
        See `_SecondOrderSolver`.

    Notes
    -----
    θ⁺ = θ_t − H_t⁻¹∇f(θ_t); choose Q as above; θ_{t+1} = (I − H_t⁻¹H_t^S)θ⁺, the minimiser of the local
    model over vectors supported on Q (the Newton step restricted to Q). Only the support differs from
    `ExactIOBS`, so every iterate is at least as good as Topk-I-OBS's on the model for ``support="topk"``;
    the greedy support carries no optimality guarantee (paper §3.4: OBC runs I-OBS d − k times with budget
    d − 1). The final weights are recomputed once by a k×k Cholesky solve instead of being taken from the
    d − k accumulated rank-one updates (equal in exact arithmetic, better conditioned in floating point).
    """

    name = "iobs_obs"
    references = (REFERENCE + ", Algorithm 1 and §3.4",
                  "Frantar & Alistarh 2022, Optimal Brain Compression, Algorithm 1")

    def __init__(self, *, support: str = "greedy", **common: Any):
        super().__init__(**common)
        self.support = support

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        if self.support not in SUPPORT_RULES:
            raise SolverConfigError(f"support={self.support!r} must be one of {', '.join(SUPPORT_RULES)}")

    def step(self, problem: Problem, state: State) -> State:
        theta_plus, curvature = self.newton_point(problem, state)
        if self.support == "greedy":
            pruned = obc_prune(theta_plus, curvature.Hinv, self.k_)[1]
            keep = np.setdiff1d(np.arange(problem.d), pruned)
        else:
            keep = np.sort(top_k_indices(theta_plus, self.k_))
        x = quadratic_model_on_support(curvature.H, curvature.H @ theta_plus, keep)
        return State(x=x, step_size=1.0, cache=state.cache)


class StochasticIOBS(IterativeSolver):
    """Stochastic I-OBS (Wu et al. 2024, App. B.1, Lemma 4): IHT with an adaptive scalar step.

    Parameters
    ----------
    batch_size : int
        Rows per minibatch gradient, drawn without replacement every iteration (capped at the number of
        samples; the size used is ``batch_size_``).
    lam : float, optional
        λ of the Hessian over-approximation ∇²f ⪯ λI + E[ggᵀ/‖g‖] (eq. 14); ``None`` uses L = smoothness(),
        for which (14) holds under L-smoothness.
    seed : int, optional
        Seed of the run's own minibatch generator; None derives it from the problem's seed.
    **common
        ``k``, ``max_iter``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.

    Notes
    -----
    θ_{t+1} = T_k(θ_t − g / (λ + ‖E_Q g‖²/‖g‖)),  Q = supp θ_t,  g an unbiased minibatch gradient at θ_t.
    Lemma 4 solves the surrogate for a *fixed* mask; using the current support Q and then T_k is the paper's
    heuristic. No convergence theorem exists for it and it is in no experiment of the paper. The recorded
    step size is 1/(λ + ‖E_Q g‖²/‖g‖).
    """

    name = "stochastic_iobs"
    # Eq. 14's step 1/(λ + ‖E_Q g‖²/‖g‖) adds a curvature (units of AᵀA) to a gradient norm (units of Aᵀy):
    # rescaling A or y changes the step relative to 1/L, so the paper's rule is not scale-free.
    invariances = frozenset()
    deterministic = False  # minibatches: x_{t+1} depends on a random draw, not on x_t alone
    references = (REFERENCE + ", App. B.1, Lemma 4",)
    requires = frozenset({"finite_sum"})

    def __init__(self, *, batch_size: int = 32, lam: float | None = None, seed: int | None = None, **common: Any):
        super().__init__(**common)
        self.batch_size = batch_size
        self.lam = lam
        self.seed = seed

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        self.batch_size_ = minibatch_size(problem, self.batch_size, self.seed)
        positive("lam", self.lam, allow_none=True, error=SolverConfigError)

    def init(self, problem: Problem) -> State:
        state = super().init(problem)
        self.lam_ = float(self.lam) if self.lam is not None else problem.smoothness()
        if not np.isfinite(self.lam_) or self.lam_ <= 0:
            raise SolverConfigError(f"the default lam = L is not positive (L={self.lam_:.3g}); set lam")
        state.cache["rng"] = minibatch_generator(problem, self.seed)
        return state

    def step(self, problem: Problem, state: State) -> State:
        x = state.x
        g = minibatch_gradient(problem, x, state, self.batch_size_)
        g_norm = float(np.linalg.norm(g))
        if g_norm == 0.0:
            return State(x=x, step_size=1.0 / self.lam_, cache=state.cache)
        g_kept = g[np.flatnonzero(x)]
        eta = 1.0 / (self.lam_ + float(g_kept @ g_kept) / g_norm)
        return State(x=hard_threshold(x - eta * g, self.k_), step_size=eta, cache=state.cache)
