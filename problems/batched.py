"""Stacked least-squares instances: the B trials of one phase-diagram cell as arrays A (B×m×d), y (B×m).

A `ProblemBatch` keeps the per-trial `LeastSquaresProblem` objects next to the stacked arrays, so the batched
solvers (`solvers.batched`) take every per-instance constant (L, ‖A‖_F², the Hessian factor, …) from the very
code the one-trial solver runs (its ``init``), cached on the same instance, and the final rows are recorded
against each instance. The stacked arrays are copies of the instances' own arrays, so they are bit for bit what the
per-seed generator drew: `build_batch` calls the generator once per seed (each instance is a function of its
own seed's stream, so there is no cheaper way to draw the same B instances).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from problems.base import LeastSquaresProblem, Problem, check


@dataclass(frozen=True, eq=False)
class ProblemBatch:
    """B least-squares instances of one shape (m, d), stacked.

    Attributes
    ----------
    problems : tuple of LeastSquaresProblem
        The instances.
    A : ndarray of shape (B, m, d)
        Their sensing matrices, C-contiguous and read-only.
    y : ndarray of shape (B, m)
        Their observations, read-only.
    x_star : ndarray of shape (B, d)
        Their targets (NaN rows where the truth is unknown), read-only.
    """

    problems: tuple[LeastSquaresProblem, ...]
    A: np.ndarray
    y: np.ndarray
    x_star: np.ndarray

    @classmethod
    def from_problems(cls, problems: Sequence[Problem]) -> ProblemBatch:
        """Stack instances that share (m, d); each must be a least-squares problem (it has ``A`` and ``y``)."""
        problems = tuple(problems)
        check(len(problems) > 0, "a problem batch needs at least one instance")
        for problem in problems:
            check("least_squares" in problem.capabilities,
                  f"problem {problem.name!r} is not a least-squares problem; only those are batched")
        shapes = sorted({problem.A.shape for problem in problems})
        check(len(shapes) == 1, f"the instances of a batch must share (m, d); got {shapes}")
        stacked = [np.stack([getattr(problem, name) for problem in problems]) for name in ("A", "y", "x_star")]
        for array in stacked:
            array.setflags(write=False)
        return cls(problems, *stacked)

    @property
    def size(self) -> int:
        """B, the number of instances."""
        return len(self.problems)

    @property
    def m(self) -> int:
        """Rows of each A."""
        return int(self.A.shape[1])

    @property
    def d(self) -> int:
        """Columns of each A (the dimension of x)."""
        return int(self.A.shape[2])


def build_batch(make: Callable[..., Problem], seeds: Sequence[int], **params: Any) -> ProblemBatch:
    """``make(**params, seed=s)`` for every seed, stacked: bit for bit the instances of the per-seed generator.

    ``ValueError`` (one line) when an instance is not a least-squares problem or the shapes differ."""
    return ProblemBatch.from_problems([make(**params, seed=int(seed)) for seed in seeds])
