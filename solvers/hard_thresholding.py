"""Hard-thresholding methods: iterative hard thresholding (IHT) and its variants."""

from __future__ import annotations

from typing import Any

import numpy as np

from problems.base import Problem
from solvers._kernels import hard_threshold
from solvers.base import IterativeSolver, SolverConfigError, State, _positive


class IHT(IterativeSolver):
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
    Cost per iteration: one gradient (two matrix-vector products for least squares) and an O(d) selection.
    """

    name = "iht"
    references = ("Blumensath & Davies 2009, Iterative hard thresholding for compressed sensing",
                  "Wu et al. 2024, The Iterative Optimal Brain Surgeon, Lemma 1")

    def __init__(self, *, step_size: float | None = None, step_scale: float = 1.0, **common: Any):
        super().__init__(**common)
        self.step_size = step_size
        self.step_scale = step_scale

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        _positive("step_size", self.step_size, allow_none=True)
        _positive("step_scale", self.step_scale)

    def init(self, problem: Problem) -> State:
        state = super().init(problem)
        state.step_size = self.step_size if self.step_size is not None else self.step_scale / problem.smoothness()
        if not np.isfinite(state.step_size) or state.step_size <= 0:
            raise SolverConfigError(f"the default step 1/L is not positive (L={problem.smoothness():.3g})")
        return state

    def step(self, problem: Problem, state: State) -> State:
        eta = state.step_size
        return State(x=hard_threshold(state.x - eta * problem.gradient(state.x), self.k_), step_size=eta)
