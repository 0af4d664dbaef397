"""Extreme eigenvalues of the sparse principal submatrices of a symmetric matrix, and the matrix-level
constants built from them: RIP constants δ_s, mutual coherence, restricted smoothness / strong convexity, and
the analytic Hessian-Lipschitz bound of logistic regression.

Every function here takes arrays, not problems; `problems.conditioning` caches them per instance. Each result
is a labelled entry ``{"value": float, "how": str, ...}`` (`constant`), ``how`` one of the labels below.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from threadpoolctl import ThreadpoolController

log = logging.getLogger(__name__)

EXACT, UPPER, LOWER, ESTIMATE = "exact", "upper bound", "lower bound", "estimate"
SAMPLED_LOWER, SAMPLED_UPPER = "sampled lower bound", "sampled upper bound"

#: Enumerate every support of size s when C(d, s) is at most this many (else sample).
MAX_SUPPORTS = 5_000
#: Random supports drawn per sparsity level before the local search.
N_SAMPLES = 200
#: Work budget (≈ Σ s³ over sampled eigenproblems) per sparsity level; fewer samples and swaps for large s.
SAMPLING_WORK = 2e7


#: A symmetric matrix is taken as numerically singular when a Cholesky pivot, relative to its diagonal entry,
#: is at most √ε (`positive_definite_cholesky`).
SINGULAR_PIVOT_RTOL = float(np.sqrt(np.finfo(float).eps))


def positive_definite_cholesky(M: np.ndarray) -> tuple[np.ndarray, bool]:
    """Cholesky factor of a symmetric M (the ``(c, lower)`` pair of `scipy.linalg.cho_factor`), or
    `numpy.linalg.LinAlgError` when M is not numerically positive definite.

    The i-th squared pivot of the factor is the Schur complement M_ii − M_{i,<i}M_{<i,<i}⁻¹M_{<i,i}; divided by
    M_ii it is the squared sine of the angle between the i-th "column" and the span of the previous ones, a
    number unchanged by rescaling rows and columns (D M D). For a singular PSD matrix it is zero in exact
    arithmetic, but the factorisation often completes with a rounding-sized pivot: over 900 rank-deficient
    Gram matrices (d = 16–200, column scales spread over e^±4) the computed value reached 1.2e3·d·ε, i.e.
    5e-11 at d = 200. The threshold √ε ≈ 1.5e-8 sits a factor 300 above that, and refuses a positive
    definite M only when cond(M) ≳ 1/√ε·(max_i M_ii/λ_max) — roughly 1e9 and above — where a Newton step would
    keep fewer than 7 digits. A zero diagonal entry counts as singular.
    """
    factor = scipy.linalg.cho_factor(M, lower=True)
    diagonal = np.diag(M)
    pivots = np.diag(factor[0]) ** 2
    if not np.all(diagonal > 0) or np.any(pivots <= SINGULAR_PIVOT_RTOL * diagonal):
        raise np.linalg.LinAlgError("matrix is numerically singular")
    return factor


def constant(value: float, how: str, **extra: Any) -> dict[str, Any]:
    """One labelled constant."""
    return {"value": float(value), "how": how, **extra}


@functools.lru_cache(maxsize=1)
def blas_controller() -> ThreadpoolController:
    """One scan of the loaded BLAS libraries (creating a controller reads /proc maps: ~ms)."""
    return ThreadpoolController()



# ----------------------------------------------------------------------------------------- sparse spectra
@dataclass(frozen=True)
class SparseSpectrum:
    """Extreme eigenvalues of the s×s principal submatrices of a symmetric G (G = AᵀA for RIP).

    ``lambda_min`` = min_{|S|=s} λ_min(G_SS) and ``lambda_max`` = max_{|S|=s} λ_max(G_SS) when ``exact``;
    otherwise the extremes found by sampling plus local search (so ``lambda_min`` ≥ the truth and
    ``lambda_max`` ≤ the truth), with certified bounds ``lambda_min_lower`` ≤ truth ≤ … ≤ ``lambda_max_upper``.
    """

    sparsity: int
    lambda_min: float
    lambda_max: float
    lambda_min_lower: float
    lambda_max_upper: float
    exact: bool


def principal_extremes(G: np.ndarray, supports: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(λ_min, λ_max) of G_SS for each row S of ``supports`` (shape (B, s)), by one batched eigvalsh."""
    w = np.linalg.eigvalsh(G[supports[:, :, None], supports[:, None, :]])
    return w[:, 0], w[:, -1]


def enumerated_extremes(G: np.ndarray, s: int, chunk: int = 4096) -> tuple[float, float]:
    """Exact min λ_min and max λ_max over all C(d, s) principal submatrices of size s."""
    lo, hi = np.inf, -np.inf
    combos = itertools.combinations(range(G.shape[0]), s)
    while batch := list(itertools.islice(combos, chunk)):
        low, high = principal_extremes(G, np.array(batch))
        lo, hi = min(lo, float(low.min())), max(hi, float(high.max()))
    return lo, hi


def swap_search(G: np.ndarray, support: np.ndarray, side: str, max_swaps: int = 12,
                n_candidates: int = 4) -> float:
    """Greedy swap local search from ``support`` for max λ_max (``side="max"``) or min λ_min of G_SS.

    Each round drops one of the two coordinates with the smallest weight in the extreme eigenvector v and
    tries the outside indices j with the largest coupling (G_{j,S} v)² / G_jj (first-order gain of adding j);
    the best swap is kept if it improves the extreme eigenvalue, else the search stops.
    """
    sign, pick = (1.0, -1) if side == "max" else (-1.0, 0)
    S = np.array(support)
    diag = np.maximum(np.diag(G), np.finfo(float).tiny)
    for _ in range(max_swaps + 1):
        w, V = np.linalg.eigh(G[np.ix_(S, S)])
        value, v = w[pick], V[:, pick]
        outside = np.setdiff1d(np.arange(G.shape[0]), S)
        if outside.size == 0:
            break
        coupling = (G[np.ix_(outside, S)] @ v) ** 2 / diag[outside]
        candidates = outside[np.argsort(coupling)[-n_candidates:]]
        trials = []
        for drop in np.argsort(np.abs(v))[:2]:
            for j in candidates:
                trial = S.copy()
                trial[drop] = j
                trials.append(trial)
        low, high = principal_extremes(G, np.array(trials))
        values = high if side == "max" else low
        best = int(np.argmax(sign * values))
        if sign * values[best] <= sign * value + 1e-13 * max(abs(value), 1.0):
            break
        S = np.array(trials[best])
    return float(value)


def spectral_starts(G: np.ndarray, s: int) -> np.ndarray:
    """Two supports: the s largest-magnitude entries of the bottom and of the top eigenvector of G (good
    starts, since λ_max(G_SS) ≥ v_Sᵀ G v_S / ‖v_S‖² for the top eigenvector v, and likewise for λ_min)."""
    d = G.shape[0]
    _, bottom = scipy.linalg.eigh(G, subset_by_index=[0, 0])
    _, top = scipy.linalg.eigh(G, subset_by_index=[d - 1, d - 1])
    return np.array([np.argsort(-np.abs(v[:, 0]))[:s] for v in (bottom, top)])


def certified_extremes(G: np.ndarray, s: int, global_min: float, global_max: float) -> tuple[float, float]:
    """Certified (lower bound of min λ_min, upper bound of max λ_max) over s-subsets.

    Interlacing gives λ_min(G) ≤ λ_min(G_SS) and λ_max(G_SS) ≤ λ_max(G); Gershgorin on G_SS gives
    G_ii ∓ (sum of the s−1 largest |G_ij|, j ≠ i). The better of the two is returned on each side.
    """
    off = np.abs(G - np.diag(np.diag(G)))
    radius = np.sort(off, axis=1)[:, G.shape[0] - (s - 1):].sum(axis=1) if s > 1 else np.zeros(G.shape[0])
    lower = max(global_min, float(np.min(np.diag(G) - radius)))
    upper = min(global_max, float(np.max(np.diag(G) + radius)))
    return lower, upper


def sparse_spectrum(G: np.ndarray, s: int, *, rng: np.random.Generator | int | None = None,
                    max_supports: int = MAX_SUPPORTS, n_samples: int = N_SAMPLES,
                    global_extremes: tuple[float, float] | None = None) -> SparseSpectrum:
    """Extreme eigenvalues of the s×s principal submatrices of a symmetric d×d matrix G.

    Exact by enumerating the C(d, s) supports when that is ≤ ``max_supports`` (and trivially for s ≥ d);
    otherwise ``n_samples`` random supports (fewer for large s, see ``SAMPLING_WORK``) plus `spectral_starts`
    are scored, the two best on each side are improved by `swap_search`, and certified bounds come from
    `certified_extremes`. ``global_extremes`` = (λ_min(G), λ_max(G)) when known (saves an eigendecomposition).
    """
    d = G.shape[0]
    if not 1 <= s:
        raise ValueError(f"sparsity s={s} must be >= 1")
    s = min(s, d)
    if global_extremes is None:
        eigenvalues = scipy.linalg.eigvalsh(G)
        global_extremes = (float(eigenvalues[0]), float(eigenvalues[-1]))
    if s == d:
        return SparseSpectrum(s, *global_extremes, *global_extremes, True)
    with blas_controller().limit(limits=1, user_api="blas"):  # many small eigenproblems: threads only contend
        if math.comb(d, s) <= max_supports:
            lo, hi = enumerated_extremes(G, s)
            return SparseSpectrum(s, lo, hi, lo, hi, True)
        log.debug("sparsity %d of %d: C(d, s) > %d supports, sampling", s, d, max_supports)
        return sampled_spectrum(G, s, rng, n_samples, global_extremes)


def sampled_spectrum(G: np.ndarray, s: int, rng: np.random.Generator | int | None, n_samples: int,
                     global_extremes: tuple[float, float]) -> SparseSpectrum:
    """The sampled branch of `sparse_spectrum`: random and spectral starts, swap search, certified bounds."""
    d = G.shape[0]
    rng = np.random.default_rng(0 if rng is None else rng)
    affordable = SAMPLING_WORK / s**3  # eigenproblems of size s within the work budget
    n_samples = int(np.clip(affordable, 4, n_samples))
    swaps = int(np.clip(affordable / 64, 1, 12))
    supports = np.vstack([np.argsort(rng.random((n_samples, d)), axis=1)[:, :s], spectral_starts(G, s)])
    low, high = principal_extremes(G, supports)
    lo = min(swap_search(G, supports[i], "min", swaps) for i in np.argsort(low)[:2])
    hi = max(swap_search(G, supports[i], "max", swaps) for i in np.argsort(high)[-2:])
    lo, hi = min(lo, float(low.min())), max(hi, float(high.max()))
    lower, upper = certified_extremes(G, s, *global_extremes)
    return SparseSpectrum(s, lo, hi, min(lower, lo), max(upper, hi), False)


def rip_from_extremes(lambda_min: float, lambda_max: float, scale: float = 1.0) -> float:
    """δ_s of √scale·A from the extreme s-sparse eigenvalues of AᵀA: max(scale·λ_max − 1, 1 − scale·λ_min)."""
    return max(scale * lambda_max - 1.0, 1.0 - scale * lambda_min)


def rip_constant(A: np.ndarray, s: int, *, rng: np.random.Generator | int | None = None,
                 max_supports: int = MAX_SUPPORTS, n_samples: int = N_SAMPLES) -> dict[str, Any]:
    """Restricted isometry constant δ_s(A) = max_{|S|=s} ‖A_SᵀA_S − I‖₂ (Foucart & Rauhut 2013, Def. 6.1).

    Returns an entry whose ``value`` is exact (enumeration, or s ≥ d) or a sampled lower bound (random supports
    improved by swap local search), with ``upper_bound`` (certified; equal to ``value`` when exact),
    ``lambda_min`` / ``lambda_max`` (the extreme s-sparse eigenvalues of AᵀA behind it) and ``sparsity``.
    """
    spectrum = sparse_spectrum(A.T @ A, s, rng=rng, max_supports=max_supports, n_samples=n_samples)
    return rip_entry(spectrum)


def rip_entry(spectrum: SparseSpectrum, scale: float = 1.0) -> dict[str, Any]:
    """The labelled δ_s of √scale·A from a `SparseSpectrum` of AᵀA."""
    value = rip_from_extremes(spectrum.lambda_min, spectrum.lambda_max, scale)
    upper = rip_from_extremes(spectrum.lambda_min_lower, spectrum.lambda_max_upper, scale)
    return constant(value, EXACT if spectrum.exact else SAMPLED_LOWER, upper_bound=upper,
                    lambda_min=spectrum.lambda_min, lambda_max=spectrum.lambda_max, sparsity=spectrum.sparsity)


def mutual_coherence(A: np.ndarray) -> float:
    """μ(A) = max_{i≠j} |⟨a_i, a_j⟩| / (‖a_i‖‖a_j‖) (Foucart & Rauhut 2013, Def. 5.1); needs nonzero columns."""
    norms = np.linalg.norm(A, axis=0)
    if np.any(norms == 0):
        raise ValueError("mutual coherence needs nonzero columns")
    C = np.abs((A / norms).T @ (A / norms))
    np.fill_diagonal(C, 0.0)
    return float(C.max(initial=0.0))


def restricted_smoothness(H: np.ndarray, k: int, **options: Any) -> dict[str, Any]:
    """Paper A3 for a constant Hessian H: L = max_{|S|=d−k} λ_max(H_SS), the largest curvature along
    (d−k)-sparse directions (Wu et al. 2024, Assumption 3). Vacuous (0, exact) when k = d."""
    if k >= H.shape[0]:
        return constant(0.0, EXACT, sparsity=0)
    spectrum = sparse_spectrum(H, H.shape[0] - k, **options)
    return constant(spectrum.lambda_max, EXACT if spectrum.exact else SAMPLED_LOWER,
                    upper_bound=spectrum.lambda_max_upper, sparsity=spectrum.sparsity)


def restricted_strong_convexity(H: np.ndarray, s: int, **options: Any) -> dict[str, Any]:
    """α_s = min_{|S|=s} λ_min(H_SS), restricted strong convexity over s-sparse directions; a sampled value
    is an upper bound of the truth, so ``lower_bound`` (certified) sits beside it."""
    spectrum = sparse_spectrum(H, s, **options)
    return constant(spectrum.lambda_min, EXACT if spectrum.exact else SAMPLED_UPPER,
                    lower_bound=spectrum.lambda_min_lower, sparsity=spectrum.sparsity)


def logistic_hessian_lipschitz_bound(X: np.ndarray, sparsity: int | None = None,
                                     scale: float | None = None) -> dict[str, Any]:
    """Upper bound of M for logistic regression f(w) = scale·Σ_i ℓ_i(x_iᵀw) (+ any quadratic term), with
    ℓ_i(z) = log(1 + e^z) − y_i z (labels in [0, 1]) or log(1 + e^{−y_i z}) (labels ±1).

    Notes
    -----
    ∇²f(w) = scale·Σ_i σ'(z_i) x_i x_iᵀ with z_i = x_iᵀw (or y_i x_iᵀw) and σ' = σ(1 − σ), an even function
    with |σ''| = |σ(1−σ)(1−2σ)| ≤ 1/(6√3). Hence |σ'(z_i) − σ'(z'_i)| ≤ |x_iᵀ(w − w')|/(6√3), and since
    −Σ c_i x_i x_iᵀ ⪯ Σ (σ'(z_i) − σ'(z'_i)) x_i x_iᵀ ⪯ Σ c_i x_i x_iᵀ for c_i ≥ |σ'(z_i) − σ'(z'_i)|,

        ‖∇²f(w) − ∇²f(w')‖₂ ≤ scale/(6√3) · max_i ‖x_i‖_(s) · λ_max(XᵀX) · ‖w − w'‖₂,

    where ‖x_i‖_(s) is the norm of the s largest-magnitude entries of row x_i (|x_iᵀu| ≤ ‖x_i‖_(s)‖u‖ for
    s-sparse u; s = ``sparsity`` = 2k + k* for paper A4, all entries when None). ``scale`` defaults to 1/n.
    """
    n, d = X.shape
    scale = 1.0 / n if scale is None else scale
    s = d if sparsity is None else min(sparsity, d)
    top = np.sort(np.abs(X), axis=1)[:, d - s:]
    row_norm = float(np.sqrt((top**2).sum(axis=1)).max())
    gram_max = float(scipy.linalg.svdvals(X)[0] ** 2)
    return constant(scale * row_norm * gram_max / (6.0 * np.sqrt(3.0)), UPPER, sparsity=s)
