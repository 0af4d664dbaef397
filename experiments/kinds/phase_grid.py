"""The grid of a phase diagram and the work of one cell, kept free of plotting so joblib workers import little.

A cell is a nominal (δ, ρ) with sizes m = round(δd), k = round(ρm); its ``trials`` instances use seeds derived
from (seed, d, m, k, trial), so results do not depend on the grid shape, the number of workers or the order in
which cells finish. `solve_cell` returns one row per trial: the final trace row of the solve, the usual
identity and parameter columns, and ``trial``, ``p_delta``, ``p_rho``, ``support_exact``, ``success``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig
from threadpoolctl import threadpool_limits

from experiments.store.results import run_id, tidy_rows
from experiments.execution.runner import build, resolved
from problems import validation

SUCCESS_RULES = ("rel_error", "support")
#: Columns that vary inside one phase diagram (never part of a configuration's group label).
CELL_COLUMNS = ("p_m", "p_k_star", "p_delta", "p_rho", "s_k")


def grid_points(spec: int | Sequence[float], name: str) -> np.ndarray:
    """The δ or ρ values of the grid: an explicit list in (0, 1], or ``n`` cell centres (i − ½)/n of a
    uniform partition of (0, 1]."""
    if isinstance(spec, (list, tuple, ListConfig)):
        points = np.asarray(list(spec), dtype=float)
        if points.size == 0 or np.any((points <= 0) | (points > 1)):
            raise ValueError(f"experiment.{name}={list(spec)} must be a non-empty list of values in (0, 1]")
        return np.unique(points)
    if isinstance(spec, bool) or not isinstance(spec, int) or spec < 1:
        raise ValueError(f"experiment.{name}={spec!r} must be a number of points >= 1 or a list of values in (0, 1]")
    return (np.arange(spec) + 0.5) / spec


def trial_seed(base_seed: int, d: int, m: int, k: int, trial: int) -> int:
    """The instance seed of one trial: a `numpy.random.SeedSequence` keyed by the base seed, the cell's
    (d, m, k) and the trial index — independent of grid shape, worker count and execution order."""
    sequence = np.random.SeedSequence(base_seed, spawn_key=(d, m, k, trial))
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class Cell:
    """One grid cell: nominal (δ, ρ), the sizes (m, k), the configs to build and the trial seeds."""

    delta: float
    rho: float
    m: int
    k: int
    problem: dict[str, Any]
    solver: dict[str, Any]
    seeds: tuple[int, ...]
    run_id: str


@dataclass(frozen=True)
class Rule:
    """The success criterion: final relative error ≤ ``tol`` (``rel_error``) or exact support (``support``)."""

    kind: str
    tol: float

    def __post_init__(self) -> None:
        if self.kind not in SUCCESS_RULES:
            raise ValueError(f"experiment.success={self.kind!r} must be one of {', '.join(SUCCESS_RULES)}")
        if not self.tol > 0:
            raise ValueError(f"experiment.success_tol={self.tol} must be > 0")

    def apply(self, rows: pd.DataFrame) -> pd.Series:
        if self.kind == "support":
            return rows["support_exact"].astype(bool)
        return rows["rel_error"].le(self.tol) & ~rows["status"].isin(("error", "diverged"))

    def __str__(self) -> str:
        return "exact support" if self.kind == "support" else f"relative error <= {self.tol:g}"


def plan_cells(cfg: DictConfig) -> list[Cell]:
    """Every cell of the configured grid, validated before anything runs (one-line ``ValueError``)."""
    problem, solver = resolved(cfg.problem), resolved(cfg.solver)
    missing = {"m", "d", "k_star"} - set(problem)
    if missing:
        raise ValueError(f"experiment=phase_transition needs a problem with m, d and k_star (a compressed-sensing "
                         f"problem such as cs_gaussian); problem lacks {', '.join(sorted(missing))}")
    d, trials, seed = problem["d"], cfg.experiment.trials, cfg.seed
    validation.integer("problem.d", d, low=1)
    validation.integer("experiment.trials", trials, low=1)
    validation.seed(seed)
    needs_k = _needs_k(problem, solver, d)
    cells = []
    for delta in grid_points(cfg.experiment.deltas, "deltas"):
        m = max(1, int(round(delta * d)))
        for rho in grid_points(cfg.experiment.rhos, "rhos"):
            k = min(max(1, int(round(rho * m))), m)
            cell_problem = {**problem, "m": m, "k_star": k}
            cell_solver = {**solver, "k": k} if needs_k else solver
            seeds = tuple(trial_seed(seed, d, m, k, t) for t in range(trials))
            rid = run_id(cell_problem, cell_solver, seed, experiment=str(cfg.experiment.name), trials=trials,
                         cell=[round(float(delta), 10), round(float(rho), 10)])
            cells.append(Cell(float(delta), float(rho), m, k, cell_problem, cell_solver, seeds, rid))
    return cells


def _needs_k(problem: dict[str, Any], solver: dict[str, Any], d: int) -> bool:
    """Build one instance and the solver to surface config errors; whether the solver takes the cell's k."""
    probe = build(solver, "solver")
    if type(probe).needs_k and solver.get("k") is not None:
        raise ValueError(f"solver.k={solver['k']} must be null in a phase diagram: each cell uses its own "
                         f"k = round(rho m)")
    instance = build({**problem, "m": max(1, d // 2), "k_star": 1}, "problem", seed=0)
    if type(probe).needs_k:
        probe = build({**solver, "k": 1}, "solver")
    probe.validate(instance)
    return bool(type(probe).needs_k)


def solve_cell(cell: Cell, experiment: str, rule: Rule) -> pd.DataFrame:
    """Solve every trial of a cell (one BLAS thread) and return one row per trial: its final iterate's row."""
    frames = []
    with threadpool_limits(limits=1):
        for trial, seed in enumerate(cell.seeds):
            problem = build(cell.problem, "problem", seed=seed)
            solver = build(cell.solver, "solver")
            result = solver.run(problem)
            frames.append(tidy_rows(result.trace[-1:], run=cell.run_id, experiment=experiment, problem=problem.name,
                                    solver=solver.name, seed=seed, problem_params=problem.params,
                                    solver_params=solver.get_params(), status=result.status,
                                    message=result.message).assign(trial=trial))
    rows = pd.concat(frames, ignore_index=True)
    rows = rows.assign(p_delta=cell.delta, p_rho=cell.rho,
                       support_exact=rows["support_recall"].eq(1.0) & rows["support_size"].eq(cell.k))
    return rows.assign(success=rule.apply(rows), success_rule=str(rule))
