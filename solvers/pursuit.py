"""Greedy pursuit methods for least squares: CoSaMP, Subspace Pursuit and Orthogonal Matching Pursuit."""

from __future__ import annotations

import logging

import numpy as np

from problems.base import Problem
from solvers._kernels import (cholesky_solve, gradient_at, hard_threshold, least_squares_on_support,
                              solve_lower_triangular, sparse_product, top_k_indices)
from solvers.base import IterativeSolver, State

log = logging.getLogger(__name__)

#: OMP keeps a column-major copy of A (as scikit-learn does) when it selects at least this many atoms: the
#: correlations Aᵀr then run as dot products over contiguous columns, about 20% faster than on row-major A
#: (measured at 1000x5000 and 2000x10000), which repays the copy (about five matrix-vector products) within
#: a few dozen atoms.
TRANSPOSED_COPY_MIN_ATOMS = 32


class CoSaMP(IterativeSolver):
    """Compressive sampling matching pursuit (Needell & Tropp 2009, Algorithm 1).

    Notes
    -----
    With residual r = y − Ax_t and proxy Aᵀr:

    1. Ω = supp(T_{2k}(Aᵀr)) ∪ supp(x_t)            (identify and merge, |Ω| ≤ 3k)
    2. b = argmin_{supp(b) ⊆ Ω} ‖Ab − y‖²            (least squares by a pivoted QR, `least_squares_on_support`)
    3. x_{t+1} = T_k(b)                              (prune; every dropped entry is exactly zero)

    Needs a least-squares problem (``A``, ``y``). Cost per iteration: one dense matrix-vector product (Aᵀr;
    Ax_t reads only the k columns of the support, `sparse_product`) and a least-squares solve on at most 3k
    columns.
    """

    name = "cosamp"
    references = ("Needell & Tropp 2009, CoSaMP: Iterative signal recovery from incomplete and inaccurate samples",)
    requires = frozenset({"least_squares"})

    def step(self, problem: Problem, state: State) -> State:
        proxy = -gradient_at(problem, state.x)
        merged = np.union1d(top_k_indices(proxy, 2 * self.k_), np.flatnonzero(state.x))
        b = least_squares_on_support(problem.A, problem.y, merged)
        return State(x=hard_threshold(b, self.k_))


class SubspacePursuit(IterativeSolver):
    """Subspace pursuit (Dai & Milenkovic 2009, Algorithm 1).

    Notes
    -----
    With T = supp(x_t) and residual r = y − Ax_t:

    1. T̃ = T ∪ supp T_k(Aᵀr)                         (expand, |T̃| ≤ 2k)
    2. b = argmin_{supp(b) ⊆ T̃} ‖Ab − y‖², T' = supp T_k(b)
    3. x' = argmin_{supp(z) ⊆ T'} ‖Az − y‖²            (re-fit on the pruned support)
    4. if ‖y − Ax'‖ > ‖r‖ keep x_t and stop (the authors' halting rule), else x_{t+1} = x'

    From x_0 = 0 the first iteration is the paper's initialisation T⁰ = supp T_k(Aᵀy). The run also stops
    (status ``ok``) when T' = T, since the next iteration would repeat this one. Needs a least-squares problem.
    """

    name = "sp"
    references = ("Dai & Milenkovic 2009, Subspace pursuit for compressive sensing signal reconstruction",)
    requires = frozenset({"least_squares"})

    def step(self, problem: Problem, state: State) -> State:
        A, y, x = problem.A, problem.y, state.x
        residual = sparse_product(A, x) - y
        expanded = np.union1d(np.flatnonzero(x), top_k_indices(-A.T @ residual, self.k_))
        b = least_squares_on_support(A, y, expanded)
        pruned = np.sort(top_k_indices(b, self.k_))
        if state.cache.get("fitted") and np.array_equal(pruned, np.flatnonzero(x)):
            state.finished = "support unchanged (subspace pursuit halts)"
            return state
        x_new = least_squares_on_support(A, y, pruned)
        if np.linalg.norm(sparse_product(A, x_new) - y) > np.linalg.norm(residual):
            state.finished = "residual did not decrease (subspace pursuit halts)"
            return state
        return State(x=x_new, cache={"fitted": True})


class OMP(IterativeSolver):
    """Orthogonal matching pursuit (Pati, Rezaiifar & Krishnaprasad 1993), one atom per iteration.

    Notes
    -----
    With active set Λ (|Λ| = t) and residual r = y − Ax_t:

    1. j = argmax_{i ∉ Λ} |a_iᵀ r|,  Λ ← Λ ∪ {j}
    2. x_{t+1} = argmin_{supp(z) ⊆ Λ} ‖y − Az‖², i.e. G_ΛΛ z_Λ = (Aᵀy)_Λ with G = AᵀA

    The Cholesky factor L of G_ΛΛ is extended by one row per atom, Lw = A_Λᵀa_j, ℓ = √(‖a_j‖² − ‖w‖²)
    (the update of scikit-learn's ``_cholesky_omp``), so an iteration costs O(md + t²) instead of a fresh
    least-squares solve. The active columns A_Λ are kept in an m×k buffer, one column appended per atom, so
    A_Λᵀa_j and A_Λz read the first t columns of the buffer instead of gathering t columns of A every
    iteration; for k ≥ `TRANSPOSED_COPY_MIN_ATOMS` the correlations Aᵀr use a column-major copy of A made in
    ``init``. OMP always starts from the empty support (``problem.x0`` is not used). It stops (status ``ok``)
    after k atoms, when the residual is zero, when the residual is orthogonal to every column up to rounding
    (the best correlation is an active column's), or when a new column is numerically dependent on the
    active ones.
    Needs a least-squares problem.
    """

    name = "omp"
    references = ("Pati, Rezaiifar & Krishnaprasad 1993, Orthogonal matching pursuit",
                  "Tropp & Gilbert 2007, Signal recovery from random measurements via orthogonal matching pursuit")
    requires = frozenset({"least_squares"})

    def init(self, problem: Problem) -> State:
        A, y = problem.A, problem.y
        At = np.ascontiguousarray(A.T) if self.k_ >= TRANSPOSED_COPY_MIN_ATOMS else A.T
        cache = dict(L=np.zeros((self.k_, self.k_)), active=[], Aty=A.T @ y, residual=np.array(y, copy=True),
                     columns=np.empty((problem.m, self.k_)), At=At)
        return State(x=np.zeros(problem.d), cache=cache)

    def step(self, problem: Problem, state: State) -> State:
        A, cache = problem.A, state.cache
        active, L, columns = cache["active"], cache["L"], cache["columns"]
        n = len(active)
        correlation = np.abs(cache["At"] @ cache["residual"])
        j = int(np.argmax(correlation))
        # Active columns are orthogonal to the residual up to rounding; if one of them still wins, so is
        # every other column (scikit-learn's stopping rule, which keeps the two selections identical).
        if j in active or correlation[j] <= np.finfo(float).tiny:
            state.finished = f"stopped after {n} atoms: the residual is orthogonal to all columns"
            return state
        columns[:, n] = A[:, j]
        if not self._extend_cholesky(L, columns[:, :n], columns[:, n], n):
            state.finished = f"stopped after {n} atoms: the next column depends on the active ones"
            return state
        active.append(j)
        coef = cholesky_solve(L[:n + 1, :n + 1], cache["Aty"][active])
        x = np.zeros(problem.d)
        x[active] = coef
        cache["residual"] = problem.y - columns[:, :n + 1] @ coef
        finished = ""
        if n + 1 == self.k_:
            finished = f"selected k={self.k_} atoms"
        elif not np.any(cache["residual"]):
            finished = f"the residual is zero after {n + 1} atoms"
        return State(x=x, cache=cache, finished=finished)

    @staticmethod
    def _extend_cholesky(L: np.ndarray, A_active: np.ndarray, atom: np.ndarray, n: int) -> bool:
        """Append row n of the Cholesky factor of the active Gram matrix; False if ``atom`` is dependent."""
        norm2 = float(atom @ atom)
        w = solve_lower_triangular(L[:n, :n], A_active.T @ atom) if n else np.zeros(0)
        pivot = norm2 - float(w @ w)
        if pivot <= np.finfo(float).eps * norm2:
            log.warning("OMP stopped after %d atoms: the next column is linearly dependent on the active ones", n)
            return False
        L[n, :n] = w
        L[n, n] = np.sqrt(pivot)
        return True
