"""Numerical kernels shared by the solver families (one implementation each)."""

from __future__ import annotations

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


def least_squares_on_support(A: np.ndarray, y: np.ndarray, support: np.ndarray) -> np.ndarray:
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
    """
    x = np.zeros(A.shape[1])
    if not support.size:
        return x
    A_S = A[:, support]
    m, s = A_S.shape
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
