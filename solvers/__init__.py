"""Sparse recovery solvers. Importing the package registers every solver family in `solvers.base.REGISTRY`."""

from solvers import convex, hard_thresholding, iobs, newton_pursuit, pursuit  # noqa: F401  (registration side effect)
from solvers import newton_step, splicing  # noqa: F401  (Meng & Zhao's NSIHT / NSHTP; abess splicing)
from solvers import tuning  # noqa: F401  (registers the tuned baselines: iht_tuned, ...)
from solvers.base import REGISTRY, DirectSolver, IterativeSolver, Result, Solver, SolverConfigError, State, make_solver

__all__ = ["REGISTRY", "DirectSolver", "IterativeSolver", "Result", "Solver", "SolverConfigError", "State",
           "make_solver"]
