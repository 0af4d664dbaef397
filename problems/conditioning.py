"""Constants of a problem instance (μ, L, restricted L, M, RIP δ_s, coherence), each labelled with how it was
obtained.

Every entry is ``{"value": float, "how": str, ...}`` with ``how`` one of ``"exact"``, ``"upper bound"``,
``"lower bound"``, ``"sampled lower bound"``, ``"sampled upper bound"``, ``"estimate"`` (extra keys such as
``"sparsity"`` are allowed). When a value cannot be computed exactly, the primary key holds the sampled value
and a certified bound in the direction the theorems need sits beside it: ``<name>_upper`` for L, M, λ_max and
δ; ``<name>_lower`` for μ and λ_min.

Results are cached per instance in a weak dictionary keyed by the (immutable) problem; computing them never
changes the instance. Sampling uses a generator seeded from ``problem.seed``, so sampled values are
deterministic.

The matrix-level computations (sparse spectra, δ_s, coherence) live in `problems.sparse_spectra`; this
module binds them to instances. Problems whose Hessian varies get certified constants on a ball around x* from `local_constants_of`
(built in for the polynomial-sensing and logistic problems; any problem may define
``local_constants(k, radius) -> dict`` of entries labelled ``"lower bound"`` (μ) / ``"upper bound"``
(M, L_restricted)); otherwise their μ, L, M are estimates at or near x*.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Callable, Hashable

import numpy as np
import scipy.linalg
import scipy.special

from problems.sparse_spectra import (EXACT, ESTIMATE, LOWER, MAX_SUPPORTS, N_SAMPLES, SAMPLED_LOWER,
                                     SAMPLED_UPPER, UPPER, SparseSpectrum, blas_controller, constant,
                                     mutual_coherence, positive_definite_cholesky,
                                     rip_entry, sparse_spectrum)

if TYPE_CHECKING:  # annotations only: problems.base calls into this module (Problem.constants)
    from problems.base import Problem

log = logging.getLogger(__name__)

#: Random sparse pairs used by `sampled_hessian_lipschitz` inside `instance_constants`.
N_PAIRS = 16

def cached(problem: Problem, key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per (problem, key), in the problem's own store (`Problem.derived`): the entry dies
    with the problem."""
    return problem.derived(key, compute)


def default_rng(problem: Problem, *salt: int) -> np.random.Generator:
    """The deterministic generator of the sampled constants of ``problem`` (never the instance's own draws)."""
    return np.random.default_rng([abs(int(problem.seed)), *salt])


# --------------------------------------------------------------------------------- Hessian Lipschitz (M)
def sparse_point_near_star(problem: Problem, size: int, radius: float,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, S): x = x* + radius·u with u ∈ [−1, 1] on a random support S of ``size`` indices that contains
    supp(x*), so x is ``size``-sparse and ‖x − x*‖_∞ ≤ radius."""
    d, star = problem.d, problem.true_support
    others = np.setdiff1d(np.arange(d), star)
    extra = rng.choice(others, size=max(0, min(size, d) - star.size), replace=False)
    support = np.concatenate([star, extra]).astype(int)
    x = np.array(problem.x_star, dtype=float)
    x[support] += radius * rng.uniform(-1.0, 1.0, size=support.size)
    return x, support


def sampled_hessian_lipschitz(problem: Problem, sparsity: int, n_pairs: int = N_PAIRS,
                              rng: np.random.Generator | int | None = None,
                              radius: float | None = None) -> dict[str, Any]:
    """Sampled lower bound of the restricted Hessian-Lipschitz constant (Wu et al. 2024, Assumption 4):

        M ≥ max over sampled pairs ‖∇²f(x) − ∇²f(x')‖₂ / ‖x − x'‖₂,   ‖x‖₀ + ‖x'‖₀ ≤ ``sparsity``.

    Points are drawn by `sparse_point_near_star` (each of size ⌊sparsity/2⌋, at least k*) at radius ``radius``
    around x* (log-uniform in [10⁻², 1]·max(‖x*‖_∞, 1) when None). Half the pairs are finite differences
    (x' = x + small sparse step on supp x, probing the third derivative), half independent points. Only
    ``problem.hessian`` is used; the instance is not changed.
    """
    rng = default_rng(problem, sparsity, 4) if rng is None else np.random.default_rng(rng)
    size = max(sparsity // 2, problem.k_star)
    scale = max(float(np.max(np.abs(problem.x_star), initial=0.0)), 1.0)
    best = 0.0
    for pair in range(n_pairs):
        r = radius if radius is not None else scale * 10.0 ** rng.uniform(-2.0, 0.0)
        x, support = sparse_point_near_star(problem, size, r, rng)
        if pair % 2 == 0:  # finite difference along a sparse direction inside the same support
            x2 = x.copy()
            u = (x[support] - problem.x_star[support]) / r + 1e-3 * rng.uniform(-1.0, 1.0, support.size)
            x2[support] = problem.x_star[support] + r * np.clip(u, -1.0, 1.0)
        else:
            x2, _ = sparse_point_near_star(problem, size, r, rng)
        gap = float(np.linalg.norm(x - x2))
        if gap > 0:
            D = problem.hessian(x) - problem.hessian(x2)
            best = max(best, float(np.max(np.abs(np.linalg.eigvalsh(0.5 * (D + D.T))))) / gap)
    return constant(best, SAMPLED_LOWER, sparsity=sparsity, n_pairs=n_pairs)



# ------------------------------------------------------------------------------------ instance constants
def sparsity_levels(k: int, k_star: int) -> dict[str, int]:
    """The sparsities at which the RIP theorems need δ_s: k*, 2k, 3k, 4k and 2k + k*."""
    return {"k_star": k_star, "2k": 2 * k, "3k": 3 * k, "4k": 4 * k, "2k_plus_k_star": 2 * k + k_star}


def spectral_constants(problem: Problem) -> dict[str, dict[str, Any]]:
    """μ = λ_min(∇²f), L = λ_max(∇²f), κ = L/μ: exact for a constant Hessian, else estimates at x*."""
    def compute() -> dict[str, dict[str, Any]]:
        w = scipy.linalg.eigvalsh(problem.hessian(problem.x_star))
        how = EXACT if problem.hessian_is_constant else ESTIMATE
        return {"mu": constant(w[0], how), "L": constant(w[-1], how),
                "condition_number": constant(w[-1] / w[0] if w[0] > 0 else np.inf, how)}
    return cached(problem, ("spectral",), compute)


def sparse_spectrum_of(problem: Problem, s: int, max_supports: int = MAX_SUPPORTS,
                       n_samples: int = N_SAMPLES) -> SparseSpectrum:
    """`sparse_spectrum` of ∇²f(x*) at sparsity min(s, d) (AᵀA for least squares), cached per instance."""
    s = min(s, problem.d)
    spectral = spectral_constants(problem)
    return cached(problem, ("sparse_spectrum", s, max_supports, n_samples), lambda: sparse_spectrum(
        problem.hessian(problem.x_star), s, rng=default_rng(problem, s), max_supports=max_supports,
        n_samples=n_samples, global_extremes=(spectral["mu"]["value"], spectral["L"]["value"])))


def restricted_smoothness_of(problem: Problem, k: int, **options: Any) -> dict[str, dict[str, Any]]:
    """Paper A3 constant L at budget k: exact / sampled + certified upper bound for a constant Hessian, an
    estimate at x* otherwise (certified values for those: `local_constants_of`)."""
    if k >= problem.d:
        out = {"L_restricted": constant(0.0, EXACT, sparsity=0)}
    else:
        spectrum = sparse_spectrum_of(problem, problem.d - k, **options)
        how = (EXACT if spectrum.exact else SAMPLED_LOWER) if problem.hessian_is_constant else ESTIMATE
        out = {"L_restricted": constant(spectrum.lambda_max, how, sparsity=spectrum.sparsity)}
        if problem.hessian_is_constant and not spectrum.exact:
            out["L_restricted_upper"] = constant(spectrum.lambda_max_upper, UPPER, sparsity=spectrum.sparsity)
    return out


def hessian_lipschitz_of(problem: Problem, k: int, n_pairs: int = N_PAIRS) -> dict[str, dict[str, Any]]:
    """Paper A4 constant M at sparsity 2k + k*: 0 (exact) for a constant Hessian, else a sampled lower bound
    (`sampled_hessian_lipschitz`; certified values on a ball: `local_constants_of`)."""
    if problem.hessian_is_constant:
        return {"M": constant(0.0, EXACT)}
    sparsity = 2 * k + problem.k_star
    return {"M": cached(problem, ("M_sampled", sparsity, n_pairs),
                        lambda: sampled_hessian_lipschitz(problem, sparsity, n_pairs))}


def rip_constants_of(problem: Problem, k: int, **options: Any) -> dict[str, dict[str, Any]]:
    """λ_min, λ_max, δ and κ of the s-sparse principal submatrices of AᵀA at every level of
    `sparsity_levels`, the budgets k the RSC/RSS results for IHT need (``budget_jtk2014`` = 32κ²k*,
    ``budget_rsc_rate`` = (κ − 1)²k*, κ at sparsity 2k + k*), mutual coherence and the eigenvalues on the
    true support."""
    out: dict[str, dict[str, Any]] = {}
    for tag, s in sparsity_levels(k, problem.k_star).items():
        spec = sparse_spectrum_of(problem, s, **options)
        exact, extra = spec.exact, {"sparsity": spec.sparsity}  # min(s, d): δ_s = δ_d for s ≥ d
        out[f"lambda_min_{tag}"] = constant(spec.lambda_min, EXACT if exact else SAMPLED_UPPER, **extra)
        out[f"lambda_max_{tag}"] = constant(spec.lambda_max, EXACT if exact else SAMPLED_LOWER, **extra)
        delta = rip_entry(spec)
        out[f"delta_{tag}"] = constant(delta["value"], delta["how"], **extra)
        out[f"kappa_{tag}"] = constant(spec.lambda_max / spec.lambda_min if spec.lambda_min > 0 else np.inf,
                                       EXACT if exact else ESTIMATE, **extra)
        if not exact:
            out[f"lambda_min_{tag}_lower"] = constant(spec.lambda_min_lower, LOWER, **extra)
            out[f"lambda_max_{tag}_upper"] = constant(spec.lambda_max_upper, UPPER, **extra)
            out[f"delta_{tag}_upper"] = constant(delta["upper_bound"], UPPER, **extra)
    kappa = out["kappa_2k_plus_k_star"]
    # The budgets the IHT results under RSC/RSS ask for, from κ = λ_max/λ_min at sparsity 2k + k*:
    # Jain, Tewari & Kar (2014, Thm 1) need k ≥ 32κ²k*; `solvers.bounds.iht_rsc_rss_rate` contracts at step
    # 1/λ_max when k > (κ − 1)²k*.
    out["budget_jtk2014"] = constant(32.0 * kappa["value"] ** 2 * problem.k_star, kappa["how"], sparsity=k)
    out["budget_rsc_rate"] = constant((kappa["value"] - 1.0) ** 2 * problem.k_star, kappa["how"], sparsity=k)
    out["coherence"] = constant(mutual_coherence(problem.A), EXACT)
    star = problem.true_support
    w = scipy.linalg.eigvalsh(problem.gram[np.ix_(star, star)]) if star.size else np.array([np.nan])
    out["lambda_min_true_support"] = constant(w[0], EXACT, sparsity=star.size)
    out["lambda_max_true_support"] = constant(w[-1], EXACT, sparsity=star.size)
    return out


def quick_sparse_extremes_of(problem: Problem, s: int, n_supports: int = 8) -> tuple[float, float]:
    """(λ_min, λ_max) over ``n_supports`` random s-column Gram matrices A_SᵀA_S of a least-squares problem,
    from the columns of A (no d×d work): a cheap sampled upper bound of min λ_min and lower bound of
    max λ_max, enough to show that an RIP assumption fails. Cached per instance."""
    def compute() -> tuple[float, float]:
        rng, A = default_rng(problem, s, 8), problem.A
        supports = np.argsort(rng.random((n_supports, problem.d)), axis=1)[:, :min(s, problem.d)]
        with blas_controller().limit(limits=1, user_api="blas"):
            w = np.linalg.eigvalsh(np.stack([A[:, S].T @ A[:, S] for S in supports]))
        return float(w[:, 0].min()), float(w[:, -1].max())
    return cached(problem, ("quick_sparse_extremes", min(s, problem.d), n_supports), compute)


def is_positive_definite(problem: Problem) -> bool:
    """Whether ∇²f(x*) ≻ 0 (μ > 0 for a constant Hessian), by a Cholesky factorisation (cheaper than eigvalsh),
    with the same numerical-singularity rule as the Newton-type solvers (`positive_definite_cholesky`), so a
    bound is never drawn for a Hessian the solvers refuse."""
    def compute() -> bool:
        if structurally_singular(problem):
            return False
        try:
            positive_definite_cholesky(problem.hessian(problem.x_star))
        except np.linalg.LinAlgError:
            return False
        return True
    return cached(problem, ("positive_definite",), compute)


def structurally_singular(problem: Problem) -> bool:
    """Whether ∇²f = AᵀA is singular by its shape alone: a least-squares problem with fewer rows than columns
    (rank ≤ m < d). Decided without floating point, so the answer does not depend on rounding."""
    return "least_squares" in problem.capabilities and problem.m < problem.d


def stationarity_of(problem: Problem) -> float:
    """‖∇f(x*)‖ / max(‖∇f(x0)‖, tiny): ≈ 0 when x* is the unconstrained minimiser (A1 with A2); cached."""
    def compute() -> float:
        starts_at_star = np.array_equal(problem.x0, problem.x_star)
        scale = 1.0 if starts_at_star else float(np.linalg.norm(problem.gradient(problem.x0)))
        return float(np.linalg.norm(problem.gradient(problem.x_star))) / max(scale, np.finfo(float).tiny)
    return cached(problem, ("stationarity",), compute)


def newton_offset_of(problem: Problem) -> float:
    """‖θ⁺ − x*‖ for the exact Newton point θ⁺ of a quadratic: ‖H⁻¹∇f(x*)‖ (θ⁺ is the unconstrained
    minimiser whatever the start, so this is its distance to x*; 0 when x* is the minimiser); cached.

    For other problems, ‖∇f(x*)‖/μ with μ = λ_min(∇²f(x*)) is returned instead (then only an estimate of the
    term the Newton bounds add; see `solvers.bounds.newton_offset`). Infinite when H is not positive definite.
    """
    def compute() -> float:
        gradient = problem.gradient(problem.x_star)
        if not is_positive_definite(problem):
            return float("inf")
        if problem.hessian_is_constant:
            factor = positive_definite_cholesky(problem.hessian(problem.x_star))
            return float(np.linalg.norm(scipy.linalg.cho_solve(factor, gradient)))
        return float(np.linalg.norm(gradient)) / spectral_constants(problem)["mu"]["value"]
    return cached(problem, ("newton_offset",), compute)


def gradient_norm_at_star_of(problem: Problem) -> float:
    """‖∇f(x*)‖₂ (0 when x* is a stationary point); cached."""
    return cached(problem, ("gradient_norm_at_star",),
                  lambda: float(np.linalg.norm(problem.gradient(problem.x_star))))


def noise_norm_of(problem: Problem) -> float:
    """‖y − Ax*‖₂ of a least-squares problem (0 when noiseless), the noise the noisy bounds carry; cached."""
    return cached(problem, ("noise_norm",),
                  lambda: float(np.linalg.norm(problem.y - problem.A @ problem.x_star)))


def radius_bin(radius: float) -> float:
    """``radius`` rounded up to the grid 2^(j/4), so local constants are computed for few distinct radii."""
    return 0.0 if radius <= 0 else 2.0 ** (math.ceil(4.0 * math.log2(radius)) / 4.0)


def local_constants_of(problem: Problem, k: int, radius: float) -> dict[str, dict[str, Any]]:
    """Certified constants valid wherever ‖x − x*‖₂ ≤ ``radius`` (rounded up by `radius_bin`), renamed
    ``mu_lower``, ``M_upper``, ``L_restricted_upper``; from ``problem.local_constants(k, radius)`` when the
    problem defines it (the polynomial-sensing and logistic problems do); {} for other problems. This module
    never switches on a problem's class: a problem's own constants are the problem's own method."""
    r = radius_bin(radius)
    if not hasattr(problem, "local_constants"):
        return {}
    compute = lambda: dict(problem.local_constants(k, r))  # noqa: E731
    suffix = {UPPER: "_upper", LOWER: "_lower", EXACT: ""}
    entries = cached(problem, ("local", k, r), compute)
    return {name + suffix[e["how"]]: e for name, e in entries.items() if e["how"] in suffix}


def instance_constants(problem: Problem, k: int | None = None, *, max_supports: int = MAX_SUPPORTS,
                       n_samples: int = N_SAMPLES) -> dict[str, dict[str, Any]]:
    """All constants of ``problem`` for sparsity budget k (default k*), each labelled (see module docstring).

    Keys: ``k``; ``mu``, ``L``, ``condition_number``; ``L_restricted`` (paper A3) and
    ``restricted_condition_number`` = L_restricted/μ; ``M`` (paper A4); for least-squares problems the RIP
    block of `rip_constants_of` (``delta_3k``, ``lambda_min_2k_plus_k_star``, ``coherence``, ...). Cached per
    (instance, k, options).
    """
    k = problem.k_star if k is None else int(k)
    options = dict(max_supports=max_supports, n_samples=n_samples)

    def compute() -> dict[str, dict[str, Any]]:
        out = {"k": constant(k, EXACT)} | spectral_constants(problem) | restricted_smoothness_of(problem, k, **options)
        mu = out["mu"]["value"]
        out["restricted_condition_number"] = constant(
            out["L_restricted"]["value"] / mu if mu > 0 else np.inf,
            EXACT if out["L_restricted"]["how"] == EXACT == out["mu"]["how"] else ESTIMATE)
        out |= hessian_lipschitz_of(problem, k)
        if not problem.hessian_is_constant:  # certified values on the ball through x0
            out |= local_constants_of(problem, k, float(np.linalg.norm(problem.x0 - problem.x_star)))
        if "least_squares" in problem.capabilities:
            out |= rip_constants_of(problem, k, **options)
        return out
    return cached(problem, ("instance", k, max_supports, n_samples), compute)
