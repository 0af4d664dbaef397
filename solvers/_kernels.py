"""Numerical kernels shared by the solver families (one implementation each)."""

from __future__ import annotations

import numpy as np
import scipy.linalg


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


def least_squares_on_support(A: np.ndarray, y: np.ndarray, support: np.ndarray) -> np.ndarray:
    """argmin_{supp(x) ⊆ S} ‖Ax − y‖², returned as a dense d-vector with exact zeros off S.

    Solved by LAPACK's complete orthogonal factorisation with column pivoting (``gelsy``), which is
    stable and returns the minimum-norm solution when A_S is rank deficient.
    """
    x = np.zeros(A.shape[1])
    if support.size:
        coef, *_ = scipy.linalg.lstsq(A[:, support], y, lapack_driver="gelsy", check_finite=False)
        x[support] = coef
    return x
