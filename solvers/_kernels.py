"""Numerical kernels shared by the solver families (one implementation each)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.linalg

from problems.base import Problem
from problems.sparse_spectra import positive_definite_cholesky

#: `sparse_product` gathers the columns of A on supp(v) when at most this fraction of v is nonzero. Gathering
#: a column of a C-ordered A costs 5-10x more per entry than a dense matrix-vector product reads (measured at
#: 1000x5000 and 2000x10000, float64); below 5% nonzeros the gather wins by 2-8x.
SPARSE_PRODUCT_DENSITY = 0.05


def top_k_indices(v: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k entries of largest magnitude (unsorted), in O(d) by introselect."""
    if k >= v.size:
        return np.arange(v.size)
    return np.argpartition(np.abs(v), v.size - k)[v.size - k:]


def hard_threshold(v: np.ndarray, k: int) -> np.ndarray:
    """T_k(v): keep the k entries of largest magnitude, zero the rest (paper §3.1 notation)."""
    out = np.zeros_like(v)
    keep = top_k_indices(v, k)
    out[keep] = v[keep]
    return out


def sparse_product(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A·v, formed from the columns of A on supp(v) alone when v is sparse (O(m·|supp v|) instead of O(m·d)).

    Hard-thresholded iterates have k ≪ d nonzeros, so the residual Ax − y of IHT-type methods costs a fraction
    of a dense product; for denser v (see `SPARSE_PRODUCT_DENSITY`) the dense BLAS product is used.
    """
    support = np.flatnonzero(v)
    if support.size > SPARSE_PRODUCT_DENSITY * v.size:
        return A @ v
    return A[:, support] @ v[support]


def gradient_at(problem: Problem, x: np.ndarray) -> np.ndarray:
    """∇f(x) of ``problem``; for least squares (f = ½‖Ax − y‖²) Aᵀ(Ax − y) with Ax by `sparse_product`.

    Same value as ``problem.gradient(x)`` up to rounding; a sparse iterate saves most of one of the two
    matrix-vector products. Problems without the ``least_squares`` capability use their own gradient.
    """
    if "least_squares" in problem.capabilities:
        return problem.A.T @ (sparse_product(problem.A, x) - problem.y)
    return problem.gradient(x)


#: `least_squares_on_support` solves by the normal equations while LAPACK's estimate of their reciprocal condition
#: number is at least this, i.e. cond(A_S) ≲ 10⁴: one refinement step then brings the error to the level of a QR
#: solve (the Cholesky error, cond(A_S)²·ε ≤ 10⁻⁸ relative, contracts by that factor per step). Below it, and
#: whenever the factorisation fails, the pivoted QR (``gelsy``) takes over.
NORMAL_EQUATIONS_MIN_RCOND = 1e-8


@dataclass(frozen=True)
class RowGramFactor:
    """AAᵀ = LLᵀ of one m × d matrix A and W = (AAᵀ)⁻¹A: what `least_squares_on_support` needs to solve its wide
    refits by the Woodbury identity (`row_gram_factor`).

    Attributes
    ----------
    factor : ndarray of shape (m, m)
        L, lower triangular (LAPACK's ``potrf``; the upper triangle is not used).
    solved_columns : ndarray of shape (m, d)
        W = (AAᵀ)⁻¹A.
    rcond : float
        LAPACK's estimate of 1/cond₁(AAᵀ) (``pocon``); 0 when AAᵀ is not numerically positive definite (rank A < m,
        or its entries over- or underflow), and the factor is then never used.
    """

    factor: np.ndarray
    solved_columns: np.ndarray
    rcond: float


def factor_row_gram(A: np.ndarray) -> RowGramFactor:
    """The `RowGramFactor` of A: m²d flops for AAᵀ, m³/3 for its factor, 2m²d for W (2-3 refits' worth)."""
    m = A.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        gram = A @ A.T
    factor, info = scipy.linalg.lapack.dpotrf(gram, lower=1, clean=0)
    rcond = 0.0
    if info == 0:
        rcond, info = scipy.linalg.lapack.dpocon(factor, np.abs(gram).sum(axis=0).max(), uplo="L")
    if info != 0 or not rcond > 0:
        return RowGramFactor(np.zeros((m, m)), np.zeros_like(A), 0.0)
    return RowGramFactor(factor, cholesky_solve(factor, A), float(rcond))


def row_gram_factor(problem: Problem) -> RowGramFactor:
    """`factor_row_gram` of a least-squares instance's A, computed once per instance (`Problem.derived`)."""
    return problem.derived("row_gram_factor", lambda: factor_row_gram(problem.A))


def least_squares_on_support(A: np.ndarray, y: np.ndarray, support: np.ndarray,
                             row_gram: Callable[[], RowGramFactor] | None = None) -> np.ndarray:
    """argmin_{supp(x) ⊆ S} ‖Ax − y‖², returned as a dense d-vector with exact zeros off S; the minimum-norm
    solution when |S| exceeds the rank of A_S (as when |S| > m).

    Solved by the corrected semi-normal equations (Björck 1987): with |S| ≤ m, the Cholesky factor of
    G = A_SᵀA_S, x = G⁻¹A_Sᵀy, then one refinement x += G⁻¹A_Sᵀ(y − A_S x); with |S| > m, on G = A_SA_Sᵀ,
    z = G⁻¹y, z += G⁻¹(y − A_SA_Sᵀz) and x = A_Sᵀz (the minimum-norm solution). The refinement restores the
    accuracy of a QR solve when cond(A_S)²·ε < 1. Where LAPACK's condition estimate (``pocon``) of G is below
    `NORMAL_EQUATIONS_MIN_RCOND`, or G is not numerically positive definite, the solve falls back to LAPACK's
    complete orthogonal factorisation with column pivoting (``gelsy``), which is stable whatever the rank.

    The normal equations cost 1.7-4.7x less than ``gelsy`` on the supports of 60-200 columns that CoSaMP, SP and HTP
    refit in a phase diagram at n = 200, about the same below 30 columns, and 1.4-1.7x less at n = 1000 (m = 500-900,
    |S| = 300-800, where both are blocked BLAS-3 work; `benchmarks/results/least_squares.md`). The refits are most
    of the cost of the failing cells of these solvers' phase diagrams.
    Blanchard & Tanner's GAGA solves these subproblems on the normal equations too (by conjugate gradients).

    Parameters
    ----------
    A : ndarray of shape (m, d)
    y : ndarray of shape (m,)
    support : ndarray of int
        S, distinct column indices.
    row_gram : callable, optional
        Returns the `RowGramFactor` of this A (`row_gram_factor` of the instance, computed once there). A wide
        support that leaves out fewer than m columns (|S| > m, c = d − |S| < m: CoSaMP's merged sets of up to
        3k columns above its transition) is then solved by `_wide_by_woodbury`: G = AAᵀ − A_S̄A_S̄ᵀ is never
        formed or factored, only the c × c matrix K = I − A_S̄ᵀ(AAᵀ)⁻¹A_S̄ (5-10x cheaper at n = 1000, where
        forming and factoring G was ~40 ms a refit). It is used while cond(G) ≤ cond(AAᵀ)/λ_min(K) stays within
        the same 1/`NORMAL_EQUATIONS_MIN_RCOND`, by LAPACK's estimates; otherwise G is formed as above.
    """
    x = np.zeros(A.shape[1])
    if not support.size:
        return x
    m, d = A.shape
    s = support.size
    if row_gram is not None and m < s and d - s < m:
        coef = _wide_by_woodbury(A, y, support, row_gram())
        if coef is not None:
            x[support] = coef
            return x
    A_S = A[:, support]
    tall = s <= m
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing G fails the test below: gelsy then
        G = A_S.T @ A_S if tall else A_S @ A_S.T
    L, info = scipy.linalg.lapack.dpotrf(G, lower=1, clean=0)
    if info == 0:
        rcond, info = scipy.linalg.lapack.dpocon(L, np.abs(G).sum(axis=0).max(), uplo="L")
    if info != 0 or not rcond >= NORMAL_EQUATIONS_MIN_RCOND:
        coef, *_ = scipy.linalg.lstsq(A_S, y, lapack_driver="gelsy", check_finite=False)
        x[support] = coef
        return x
    if tall:
        coef = cholesky_solve(L, A_S.T @ y)
        coef += cholesky_solve(L, A_S.T @ (y - A_S @ coef))
    else:
        z = cholesky_solve(L, y)
        z += cholesky_solve(L, y - A_S @ (A_S.T @ z))  # the residual of A_S x = y itself, not of the rounded G
        coef = A_S.T @ z
    x[support] = coef
    return x


def _wide_by_woodbury(A: np.ndarray, y: np.ndarray, support: np.ndarray, row_gram: RowGramFactor
                      ) -> np.ndarray | None:
    """The minimum-norm solution on a wide support from the factor of AAᵀ, or None where that is not safe.

    With S̄ the c columns that S leaves out, G = A_SA_Sᵀ = AAᵀ − A_S̄A_S̄ᵀ and (Woodbury)
    G⁻¹v = (AAᵀ)⁻¹v + W_S̄ K⁻¹ W_S̄ᵀv, W = (AAᵀ)⁻¹A, K = I_c − A_S̄ᵀW_S̄ (symmetric positive definite while A_S has
    rank m). Then z = G⁻¹y, one refinement z += G⁻¹(y − A_SA_Sᵀz) with the products of A_S taken as products of A
    (zero off S), and x_S = A_Sᵀz: the corrected semi-normal equations of `least_squares_on_support`. Since
    AAᵀ^{-1/2} G AAᵀ^{-1/2} has the eigenvalues of K and ones, and G ⪯ AAᵀ, cond₂(G) ≤ cond₂(AAᵀ)/λ_min(K); the
    solve goes on only while LAPACK's estimates keep that bound within 1/`NORMAL_EQUATIONS_MIN_RCOND`
    (‖K⁻¹‖₂ ≤ ‖K⁻¹‖₁ = 1/(rcond₁(K)·‖K‖₁) for symmetric K), and returns None otherwise.
    """
    if not row_gram.rcond > 0:
        return None
    outside = np.ones(A.shape[1], dtype=bool)
    outside[support] = False
    W_out = row_gram.solved_columns[:, outside]
    with np.errstate(over="ignore", invalid="ignore"):
        K = np.eye(W_out.shape[1]) - A[:, outside].T @ W_out
    bound = row_gram.rcond
    if K.size:
        L_K, info = scipy.linalg.lapack.dpotrf(K, lower=1, clean=0)
        if info != 0:
            return None
        norm = np.abs(K).sum(axis=0).max()
        rcond, info = scipy.linalg.lapack.dpocon(L_K, norm, uplo="L")
        if info != 0:
            return None
        bound *= rcond * norm  # λ_min(K) = 1/‖K⁻¹‖₂ ≥ 1/‖K⁻¹‖₁ = rcond₁(K)·‖K‖₁
    if not bound >= NORMAL_EQUATIONS_MIN_RCOND:
        return None

    def solve(v: np.ndarray) -> np.ndarray:
        """G⁻¹v."""
        solved = cholesky_solve(row_gram.factor, v)
        return solved + W_out @ cholesky_solve(L_K, W_out.T @ v) if K.size else solved

    z = solve(y)
    w = A.T @ z
    w[outside] = 0.0
    z += solve(y - A @ w)  # the residual of A_S x = y itself
    return (A.T @ z)[support]


def cholesky_factor(H: np.ndarray, damping: float = 0.0) -> tuple[np.ndarray, bool]:
    """Cholesky factor of H + damping·I in the form `scipy.linalg.cho_solve` takes.

    Raises `numpy.linalg.LinAlgError` when the (damped) matrix is not positive definite, including when it is
    numerically singular: a singular PSD matrix (e.g. AᵀA with fewer rows than columns) often factorises in
    floating point with a pivot of rounding size, and its solves are then meaningless. The test is
    `problems.sparse_spectra.positive_definite_cholesky` (a pivot relative to its diagonal entry ≤ √ε), whose
    threshold sits well above the rounding level of singular matrices. Callers turn the error into a message
    naming the fix.
    """
    M = H + damping * np.eye(H.shape[0]) if damping else H
    return positive_definite_cholesky(M)


def quadratic_model_on_support(H: np.ndarray, b: np.ndarray, support: np.ndarray) -> np.ndarray:
    """argmin_{supp(x) ⊆ Q} ½xᵀHx − bᵀx = H_QQ⁻¹ b_Q, as a dense d-vector with exact zeros off Q.

    With b = Hθ⁺ this is the minimiser of the quadratic model ½(x − θ⁺)ᵀH(x − θ⁺) over vectors supported on
    Q, i.e. the OBS-corrected weights (I − H⁻¹H^S)θ⁺ with S = [d] \\ Q (Wu et al. 2024, proof of Lemma 2).
    H_QQ is a principal submatrix of a positive definite H, hence positive definite itself.
    """
    x = np.zeros(b.shape[0])
    if support.size:
        factor = scipy.linalg.cho_factor(H[np.ix_(support, support)], lower=True)
        x[support] = scipy.linalg.cho_solve(factor, b[support])
    return x


def solve_lower_triangular(L: np.ndarray, b: np.ndarray, transposed: bool = False) -> np.ndarray:
    """L⁻¹b (or L⁻ᵀb with ``transposed``) for a row-major lower-triangular float64 L, by LAPACK ``trtrs`` on
    the transposed, upper-triangular array (a view, no copy).

    The call `scipy.linalg.solve_triangular(L, b, lower=True)` makes for such an L (same numbers), without its
    validation layers, which cost more than the solve itself for the small systems OMP solves once per atom.
    """
    x, info = scipy.linalg.lapack.dtrtrs(L.T, b, lower=0, trans=0 if transposed else 1)
    if info != 0:
        raise np.linalg.LinAlgError(f"triangular solve failed (LAPACK info={info})")
    return x


def cholesky_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(LLᵀ)⁻¹b for a lower Cholesky factor L: LAPACK ``potrs``, the call of `scipy.linalg.cho_solve` (same
    numbers) without its validation layers."""
    x, info = scipy.linalg.lapack.dpotrs(L, b, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky solve failed (LAPACK info={info})")
    return x


def robust_norm(v: np.ndarray) -> float:
    """‖v‖₂ by BLAS ``nrm2``, which scales as it sums: no overflow or underflow for entries near 1e±300, where
    ``sqrt(v @ v)`` returns inf or 0 (a decision taken from it, e.g. "this column is zero", would be wrong)."""
    return float(scipy.linalg.blas.dnrm2(np.ascontiguousarray(v, dtype=float))) if v.size else 0.0


def max_column_norm(A: np.ndarray) -> float:
    """max_j ‖a_j‖₂ in one pass over A, rescaled by max|A| when the squares overflow or underflow."""
    value = float(np.sqrt(np.max(np.einsum("ij,ij->j", A, A), initial=0.0)))
    if np.isfinite(value) and value > np.sqrt(np.finfo(float).tiny):
        return value
    scale = float(np.max(np.abs(A), initial=0.0))
    if not np.isfinite(scale) or scale == 0.0:
        return scale
    B = A / scale
    return scale * float(np.sqrt(np.max(np.einsum("ij,ij->j", B, B))))


def minibatch_rows(rng: np.random.Generator, n: int, batch_size: int) -> np.ndarray:
    """Indices of a minibatch: ``batch_size`` distinct rows of ``n``, uniformly at random."""
    return rng.choice(n, size=batch_size, replace=False)
