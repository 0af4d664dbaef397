"""Test doubles for the fault-injection suite: solvers that raise, produce NaN, or hang inside one call."""

from __future__ import annotations

import time

import numpy as np

from solvers.base import DirectSolver, IterativeSolver, State


class Raising(IterativeSolver):
    """Raises on its third iteration."""

    name = "fault_raising"
    references = ("test double",)

    def step(self, problem, state):
        if state.cache.get("t", 0) >= 2:
            raise np.linalg.LinAlgError("injected failure")
        return State(x=state.x + 1.0, cache={"t": state.cache.get("t", 0) + 1})


class NaNProducing(IterativeSolver):
    """Returns a NaN iterate."""

    name = "fault_nan"
    references = ("test double",)

    def step(self, problem, state):
        return State(x=np.full(problem.d, np.nan))


class Hanging(DirectSolver):
    """Sleeps in one uninterruptible call, like a long BLAS or cvxpy solve."""

    name = "fault_hanging"
    references = ("test double",)

    def __init__(self, *, seconds: float = 60.0, **common):
        super().__init__(**common)
        self.seconds = seconds

    def solve(self, problem):
        time.sleep(self.seconds)
        return np.zeros(problem.d), 0
