"""Best-subset selection by splicing (Zhu, Wen, Zhu, Zhang & Wang, PNAS 117(52), 2020), through ``abess``.

Splicing keeps an active set A of size k and, at each iteration, exchanges the s ≤ C_max least useful active
columns (smallest *backward sacrifice*: the loss increase of dropping each) for the s most useful inactive
ones (largest *forward sacrifice*: the loss decrease of adding each), refitting least squares on the new set;
the exchange is accepted when the loss drops by more than a threshold τ, and the iteration stops when no
exchange size s = C_max, …, 1 is accepted. The package's compiled implementation (``abess``, optional extra
``obsbench[splicing]``) is the one this solver calls; obsbench adds the problem interface and the scaling.

Scaling. abess's τ is absolute — 0.01·k·log d·log log n / n, compared with the loss ½‖y − Ax‖²/n in the
units of y — so whether an exchange counts depends on the scale of y: on a noiseless y of unit norm every
useful exchange is below τ and the run stops on a wrong support. The solver therefore fits
y' = y · (loss_scale·√n/‖y‖), i.e. ‖y'‖²/n = loss_scale², and divides the coefficients back (least squares
is scale-equivariant): τ is then ~1e-9 of the initial loss for the default ``loss_scale`` = 1e4, and the
answer does not depend on the units of y. The package also standardises the columns of A internally, so
rescaling a column does not change the support either.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from problems.base import Problem
from problems.validation import integer, number
from solvers.base import DirectSolver, SolverConfigError

REFERENCE = "Zhu, Wen, Zhu, Zhang & Wang 2020, A polynomial algorithm for best-subset selection problem (PNAS)"


class Splicing(DirectSolver):
    """Best k-subset least squares by abess's splicing (module docstring).

    Parameters
    ----------
    k : int, optional
        Subset size; None uses the problem's k*.
    exchange_num : int
        C_max, the largest number of columns exchanged in one splicing step (abess default 5).
    max_iter : int
        Maximum splicing iterations (abess default 20).
    loss_scale : float
        y is rescaled so that ‖y‖²/n = loss_scale² before the fit (module docstring); the result is
        rescaled back. 1e4 makes abess's absolute threshold ~1e-9 of the initial loss.
    time_budget : float, optional
        See `DirectSolver`.

    Notes
    -----
    abess's defaults otherwise (warm starts, splicing_type 0 = halve the exchange size, important_search 128
    candidates, no screening, one thread). The fixed support size ``support_size=[k]`` switches off its
    information-criterion path over sizes: the same ℓ0-constrained problem every other solver here attacks.
    Cost: each splicing iteration sorts the d sacrifices and refits least squares on k columns, O(nd + nk²).
    """

    name = "splicing"
    references = (REFERENCE, "Zhu et al. 2022, abess: a fast best-subset selection library in Python and R (JMLR)")
    requires = frozenset({"least_squares"})
    needs_k = True
    invariances = frozenset({"global", "columns"})

    def __init__(self, *, k: int | None = None, exchange_num: int = 5, max_iter: int = 20, loss_scale: float = 1e4,
                 **common: Any):
        super().__init__(**common)
        self.k = k
        self.exchange_num = exchange_num
        self.max_iter = max_iter
        self.loss_scale = loss_scale

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        integer("exchange_num", self.exchange_num, low=1, error=SolverConfigError)
        integer("max_iter", self.max_iter, low=1, error=SolverConfigError)
        number("loss_scale", self.loss_scale, low=0, strict_low=True, error=SolverConfigError)
        self.k_ = self.sparsity(problem)
        if _abess() is None:
            raise SolverConfigError("solver splicing needs the abess package: pip install 'obsbench[splicing]'")

    def solve(self, problem: Problem) -> tuple[np.ndarray, int]:
        A, y = problem.A, problem.y
        norm = float(np.linalg.norm(y))
        if norm == 0.0:
            return np.zeros(problem.d), 0
        scale = self.loss_scale * np.sqrt(problem.m) / norm
        model = _abess().LinearRegression(support_size=[self.k_], fit_intercept=False, max_iter=self.max_iter,
                                          exchange_num=self.exchange_num, thread=1)
        coef = model.fit(A, y * scale).coef_ / scale
        return np.asarray(coef, dtype=float), 0


def _abess() -> Any:
    """The abess module, or None when the optional extra is not installed."""
    try:
        return importlib.import_module("abess")
    except ImportError:
        return None
