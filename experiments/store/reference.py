"""The reference objective a run is measured against where the distance to x* does not say enough.

With noise (x* is not the minimiser) or real data (x* unknown), the quality of a k-sparse answer is its
objective against the best k-subset objective f_best (`problems.oracle.best_subset`): the stored column
``objective_gap`` = f(x)/f_best − 1, with ``oracle`` saying how f_best was obtained (``exact``: every subset
scored, a certificate; ``best known``: a heuristic, only an estimate of the gap). Which runs get one is the
``oracle`` setting of the run (`ORACLE_MODES`):

- ``auto`` (default): none when x* is known and minimises f (noiseless: the distance to x* says it all);
  else exact when the C(d, k) subsets can be enumerated (≤ ``max_subsets``); otherwise, only when the truth
  is unknown (real data), where no other yardstick exists: certified by branch and bound when the optional
  gurobipy is installed and proves optimality within ``oracle_time_limit`` seconds, else ``best known``;
- ``exact``: only certified references (enumeration, else branch and bound for least squares);
- ``off``: none (the columns are NaN / empty).

Budget-free solvers (basis pursuit, the Lasso) are compared with the best k*-subset; their answers may be
denser, so their gap can be negative. f_best is cached on disk under ``<results root>/oracles/`` by the
problem's resolved configuration, seed and k, since an enumeration can take seconds and every job of a sweep
builds its own problem instance.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from experiments.store.results import atomic_write, run_id
from problems import mixed_integer
from problems.base import Problem
from problems.oracle import EXACT, best_subset

log = logging.getLogger(__name__)

ORACLE_MODES = ("auto", "exact", "off")
#: Subsets enumerated at most for an exact reference (C(64, 5) = 7.6e6 of the diabetes quadratic model fit).
MAX_SUBSETS = 10_000_000
#: Seconds the branch-and-bound certificate of one instance may take (`problems.mixed_integer`).
TIME_LIMIT = 60.0


@dataclass(frozen=True)
class Reference:
    """f_best and how it was obtained (``exact`` / ``best known``)."""

    objective: float
    how: str


def oracle_budget(problem: Problem, solver: Any) -> int:
    """The k the reference is computed for: the solver's budget, else the problem's k*."""
    k = getattr(solver, "k_", None) if getattr(solver, "needs_k", False) else None
    return int(k) if k is not None else int(problem.k_star)


def problem_is_noisy(problem: Problem) -> bool:
    """Whether x* is not a minimiser of f: f(x*) above rounding relative to f(x_0) (noise, or a loss such
    as the logistic one that is positive at every point)."""
    at_start = abs(float(problem.objective(problem.x0)))
    return float(problem.objective(problem.x_star)) > 1e-12 * max(at_start, 1e-300)


def _read_cache(path: Path) -> dict[str, Any] | None:
    """A cached reference, or None (with a warning naming the file) when it cannot be read: computed again."""
    try:
        stored = json.loads(path.read_text())
        float(stored["objective"]), str(stored["how"])
        return stored
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("unreadable oracle cache %s (%s): computed again", path, type(exc).__name__)
        return None


def reference_for(problem: Problem, solver: Any, *, mode: str, root: Path, problem_config: Mapping[str, Any],
                  seed: int, max_subsets: int = MAX_SUBSETS, time_limit: float = TIME_LIMIT) -> Reference | None:
    """The reference of one run under ``mode`` (see the module docstring), read from or written to the disk
    cache under ``root``; None when the mode gives none. Never raises: a failing oracle logs a warning and
    gives None (the run itself is not affected)."""
    if mode not in ORACLE_MODES:
        raise ValueError(f"oracle={mode!r} must be one of {', '.join(ORACLE_MODES)}")
    if mode == "off":
        return None
    if problem.has_truth and not problem_is_noisy(problem):
        return None  # x* is the minimiser, f_best = 0: the distance to x* says it all
    k = oracle_budget(problem, solver)
    enumerable = math.comb(problem.d, k) <= max_subsets
    if not enumerable and problem.has_truth and mode == "auto":
        return None  # synthetic data keep x*, which needs no oracle; a certificate per instance would cost seconds
    certifier = mixed_integer.solver_name() if "least_squares" in problem.capabilities and time_limit > 0 else None
    if not enumerable and mode == "exact" and certifier is None:
        return None
    limits = {"k": k, "max_subsets": max_subsets}
    if not enumerable and certifier is not None:  # a new certifier (or limit) may certify what was best known
        limits.update(certifier=certifier, time_limit=time_limit)
    cache = root / "oracles" / f"{run_id(dict(problem_config), limits, seed)}.json"
    stored = _read_cache(cache) if cache.is_file() else None
    if stored is None:
        try:
            oracle = best_subset(problem, k, max_subsets=max_subsets, time_limit=time_limit if certifier else 0.0)
        except Exception as exc:  # a reference must never break a run
            log.warning("no oracle for %s (k=%d): %s: %s", problem.name, k, type(exc).__name__, exc)
            return None
        stored = dict(objective=float(oracle.objective), how=oracle.how, k=k, support=[int(i) for i in oracle.support],
                      subsets=int(oracle.subsets), method=oracle.method, lower_bound=float(oracle.lower_bound))
        atomic_write(cache, lambda handle: handle.write(json.dumps(stored).encode()))
        log.info("oracle for %s (k=%d): f_best=%.6g (%s by %s)", problem.name, k, oracle.objective, oracle.how,
                 oracle.method)
    if mode == "exact" and stored["how"] != EXACT:
        return None
    return Reference(float(stored["objective"]), str(stored["how"]))
