"""Greedy pursuit methods for least squares: CoSaMP, Subspace Pursuit and Orthogonal Matching Pursuit."""

from __future__ import annotations

import logging
from functools import partial

import numpy as np

from problems.base import Problem
from solvers._kernels import (cholesky_solve, gradient_at, hard_threshold, least_squares_on_support, max_column_norm,
                              robust_norm, row_gram_factor, solve_lower_triangular, sparse_product, top_k_indices)
from solvers.base import IterativeSolver, State

log = logging.getLogger(__name__)

#: OMP keeps a column-major copy of A (as scikit-learn does) when it selects at least this many atoms: the
#: correlations Aᵀr then run as dot products over contiguous columns, about 20% faster than on row-major A
#: (measured at 1000x5000 and 2000x10000), which repays the copy (about five matrix-vector products) within
#: a few dozen atoms.
TRANSPOSED_COPY_MIN_ATOMS = 32
#: OMP's residual and orthogonality tolerances are this factor times m·ε (see `OMP`).
RESIDUAL_RTOL = np.finfo(float).eps
#: OMP refuses a column whose distance to the active span is at most this fraction of its norm (√ε).
DEPENDENCE_RTOL = float(np.sqrt(np.finfo(float).eps))


class CoSaMP(IterativeSolver):
    """Compressive sampling matching pursuit (Needell & Tropp 2009, Algorithm 1).

    Notes
    -----
    With residual r = y − Ax_t and proxy Aᵀr:

    1. Ω = supp(T_{2k}(Aᵀr)) ∪ supp(x_t)            (identify and merge, |Ω| ≤ 3k)
    2. b = argmin_{supp(b) ⊆ Ω} ‖Ab − y‖²            (least squares, `least_squares_on_support`)
    3. x_{t+1} = T_k(b)                              (prune; every dropped entry is exactly zero)

    Needs a least-squares problem (``A``, ``y``). Cost per iteration: one dense matrix-vector product (Aᵀr;
    Ax_t reads only the k columns of the support, `sparse_product`) and a least-squares solve on at most 3k
    columns (by the Woodbury identity from the instance's factored AAᵀ, `row_gram_factor`, when Ω holds more
    than m columns and leaves out fewer than m).
    """

    name = "cosamp"
    references = ("Needell & Tropp 2009, CoSaMP: Iterative signal recovery from incomplete and inaccurate samples",)
    requires = frozenset({"least_squares"})

    def step(self, problem: Problem, state: State) -> State:
        proxy = -gradient_at(problem, state.x)
        merged = np.union1d(top_k_indices(proxy, 2 * self.k_), np.flatnonzero(state.x))
        b = least_squares_on_support(problem.A, problem.y, merged, partial(row_gram_factor, problem))
        return State(x=hard_threshold(b, self.k_))


class SubspacePursuit(IterativeSolver):
    """Subspace pursuit (Dai & Milenkovic 2009, Algorithm 1).

    Notes
    -----
    With T = supp(x_t) and residual r = y − Ax_t:

    1. T̃ = T ∪ supp T_k(Aᵀr)                         (expand, |T̃| ≤ 2k)
    2. b = argmin_{supp(b) ⊆ T̃} ‖Ab − y‖², T' = supp T_k(b)
    3. x' = argmin_{supp(z) ⊆ T'} ‖Az − y‖²            (re-fit on the pruned support)
    4. if ‖y − Ax'‖ ≥ ‖r‖ keep x_t and stop (the authors' halting rule), else x_{t+1} = x'

    From x_0 = 0 the first iteration is the paper's initialisation T⁰ = supp T_k(Aᵀy). The run also stops
    (status ``ok``) when T' = T, since the next iteration would repeat this one (T is the index set of the last
    fit, kept in the state). A decrease of the residual norm counts only above m·ε·‖y‖, its rounding level
    (scale-free): two supports that fit equally well up to rounding cannot make the run alternate between them
    until ``max_iter``. The first fit (from x_0, which need not be a fit) is always taken. Needs a
    least-squares problem.
    """

    name = "sp"
    references = ("Dai & Milenkovic 2009, Subspace pursuit for compressive sensing signal reconstruction",)
    requires = frozenset({"least_squares"})

    def step(self, problem: Problem, state: State) -> State:
        A, y, x = problem.A, problem.y, state.x
        residual = sparse_product(A, x) - y
        expanded = np.union1d(np.flatnonzero(x), top_k_indices(-A.T @ residual, self.k_))
        b = least_squares_on_support(A, y, expanded, partial(row_gram_factor, problem))
        pruned = np.sort(top_k_indices(b, self.k_))
        if np.array_equal(pruned, state.cache.get("support")):
            state.finished = "support unchanged (subspace pursuit halts)"
            return state
        x_new = least_squares_on_support(A, y, pruned)
        decrease = np.linalg.norm(residual) - np.linalg.norm(sparse_product(A, x_new) - y)
        if state.cache.get("support") is not None and not decrease > problem.m * RESIDUAL_RTOL * np.linalg.norm(y):
            state.finished = "residual did not decrease (subspace pursuit halts)"
            return state
        return State(x=x_new, cache={"support": pruned})


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
    ``init``. OMP always starts from the empty support (``problem.x0`` is not used).

    Stopping rules (status ``ok``, the rule in ``message``). Each compares a rounding-affected number with a
    threshold that is scale-free (unchanged when A or y is multiplied by a constant) and well above the
    rounding level, so the number of atoms does not depend on the BLAS that computed it:

    - k atoms selected, or min(m, d) atoms: m independent columns span ℝᵐ, so no further atom can lower the
      residual (exact, no floating-point decision);
    - ‖r‖ ≤ m·ε·‖y‖ (`RESIDUAL_RTOL`): y is in the span of the active columns up to rounding (the computed
      residual of a consistent system is a few ε·‖y‖; the factor m covers the accumulation over m rows);
    - max_i |a_iᵀr| ≤ m·ε·max_i‖a_i‖·‖y‖: the residual is orthogonal to every column up to rounding; also
      when the best correlation is an active column's (scikit-learn's rule: active correlations are
      rounding-level, so every other one is too);
    - the new column a_j is numerically dependent on the active ones: its distance to their span,
      ‖a_j − P_Λa_j‖, is at most √ε·‖a_j‖ (`DEPENDENCE_RTOL`), past which the Gram matrix G_ΛΛ would have a
      condition number above 1/ε and the coefficients would be meaningless. The distance is computed from
      the orthogonalised vector a_j − A_Λ G_ΛΛ⁻¹A_Λᵀa_j, not as √(‖a_j‖² − ‖w‖²), whose cancellation leaves
      an error of order ε·‖a_j‖² in the squared pivot, as large as the threshold itself.
    Needs a least-squares problem.
    """

    name = "omp"
    references = ("Pati, Rezaiifar & Krishnaprasad 1993, Orthogonal matching pursuit",
                  "Tropp & Gilbert 2007, Signal recovery from random measurements via orthogonal matching pursuit")
    requires = frozenset({"least_squares"})

    def init(self, problem: Problem) -> State:
        A, y = problem.A, problem.y
        At = np.ascontiguousarray(A.T) if self.k_ >= TRANSPOSED_COPY_MIN_ATOMS else A.T
        y_norm = robust_norm(y)
        # an instance constant, like L for the 1/L steps: computed once per problem, shared by its runs
        column_norm = problem.derived("max_column_norm", lambda: max_column_norm(A))
        finfo = np.finfo(float)
        if not column_norm <= np.sqrt(finfo.max / max(y_norm, 1.0)):
            raise FloatingPointError(f"the Gram entries of A (column norm {column_norm:.3g}) or Aᵀy overflow "
                                     "float64; rescale A and y")
        if 0 < column_norm < np.sqrt(finfo.tiny / finfo.eps):  # products a_iᵀa_j would lose digits as subnormals
            raise FloatingPointError(f"the Gram entries of A (column norm {column_norm:.3g}) underflow float64; "
                                     "rescale A")
        cache = dict(L=np.zeros((self.k_, self.k_)), active=[], Aty=A.T @ y, residual=np.array(y, copy=True),
                     columns=np.empty((problem.m, self.k_)), At=At,
                     max_atoms=min(self.k_, problem.m),
                     residual_floor=problem.m * RESIDUAL_RTOL * y_norm,
                     correlation_floor=problem.m * RESIDUAL_RTOL * column_norm * y_norm)
        return State(x=np.zeros(problem.d), cache=cache)

    def step(self, problem: Problem, state: State) -> State:
        A, cache = problem.A, state.cache
        active, L, columns = cache["active"], cache["L"], cache["columns"]
        n = len(active)
        if np.linalg.norm(cache["residual"]) <= cache["residual_floor"]:  # y = 0, or reached below
            state.finished = f"stopped after {n} atoms: the residual is zero up to rounding"
            return state
        correlation = np.abs(cache["At"] @ cache["residual"])
        j = int(np.argmax(correlation))
        if j in active or correlation[j] <= cache["correlation_floor"]:
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
        elif n + 1 == cache["max_atoms"]:
            finished = f"selected m={problem.m} atoms: the active columns span R^m"
        elif np.linalg.norm(cache["residual"]) <= cache["residual_floor"]:
            finished = f"the residual is zero up to rounding after {n + 1} atoms"
        return State(x=x, cache=cache, finished=finished)

    @staticmethod
    def _extend_cholesky(L: np.ndarray, A_active: np.ndarray, atom: np.ndarray, n: int) -> bool:
        """Append row n of the Cholesky factor of the active Gram matrix; False if ``atom`` is dependent.

        Row n is (w, ℓ) with Lw = A_Λᵀa and ℓ = ‖a − A_Λ L⁻ᵀw‖, the distance of a to the active span,
        computed from the orthogonalised vector (see `OMP` for why not from ‖a‖² − ‖w‖²).
        """
        atom_norm = robust_norm(atom)
        if n:
            w = solve_lower_triangular(L[:n, :n], A_active.T @ atom)
            orthogonal = atom - A_active @ solve_lower_triangular(L[:n, :n], w, transposed=True)
        else:
            w, orthogonal = np.zeros(0), atom
        distance = robust_norm(orthogonal)
        if not distance > DEPENDENCE_RTOL * atom_norm:
            log.warning("OMP stopped after %d atoms: the next column is linearly dependent on the active ones", n)
            return False
        L[n, :n] = w
        L[n, n] = distance
        return True
