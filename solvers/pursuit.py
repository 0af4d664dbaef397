"""Greedy pursuit methods for least squares: CoSaMP (and, in the same family, SP and OMP)."""

from __future__ import annotations

import numpy as np

from problems.base import Problem
from solvers._kernels import hard_threshold, least_squares_on_support, top_k_indices
from solvers.base import IterativeSolver, State


class CoSaMP(IterativeSolver):
    """Compressive sampling matching pursuit (Needell & Tropp 2009, Algorithm 1).

    Notes
    -----
    With residual r = y − Ax_t and proxy Aᵀr:

    1. Ω = supp(T_{2k}(Aᵀr)) ∪ supp(x_t)            (identify and merge, |Ω| ≤ 3k)
    2. b = argmin_{supp(b) ⊆ Ω} ‖Ab − y‖²            (least squares by a pivoted QR, `least_squares_on_support`)
    3. x_{t+1} = T_k(b)                              (prune; every dropped entry is exactly zero)

    Needs a least-squares problem (``A``, ``y``). Cost per iteration: two matrix-vector products and a
    least-squares solve on at most 3k columns.
    """

    name = "cosamp"
    references = ("Needell & Tropp 2009, CoSaMP: Iterative signal recovery from incomplete and inaccurate samples",)
    requires = frozenset({"least_squares"})

    def step(self, problem: Problem, state: State) -> State:
        proxy = -problem.gradient(state.x)
        merged = np.union1d(top_k_indices(proxy, 2 * self.k_), np.flatnonzero(state.x))
        b = least_squares_on_support(problem.A, problem.y, merged)
        return State(x=hard_threshold(b, self.k_))
