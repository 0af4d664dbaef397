"""The grid of a phase diagram and the work of one cell, kept free of plotting so joblib workers import little.

A cell is a nominal (δ, ρ) with sizes m = round(δd), k = round(ρm); its ``trials`` instances use seeds derived
from (seed, d, m, k, trial), so results do not depend on the grid shape, the number of workers or the order in
which cells finish. `solve_cell` returns one row per trial: the final trace row of the solve, the usual
identity and parameter columns, and ``trial``, ``p_delta``, ``p_rho``, ``support_exact``, ``success``.

The trials of a cell run batched (`solvers.batched`: stacked instances, one computation; the small cells of a δ
column together, `cell_groups`) when the solver has a batched twin and the problem is least squares, otherwise one
by one; both give the same rows (the batched solvers reproduce the one-trial ones) apart from ``time_s``. How a
cell is computed (`Execution`) is not part of its run id, so stored cells resume whichever way they were computed.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig
from threadpoolctl import threadpool_limits

from experiments.store.results import run_id, tidy_rows
from experiments.execution import interrupt
from experiments.execution.runner import build, identity, resolved
from problems import validation
from problems.batched import ProblemBatch
from solvers.base import Result
from solvers.batched import BACKENDS, batched_for, get_backend

log = logging.getLogger(__name__)

#: Bytes of stacked sensing matrices one batched computation aims at (`cell_groups`): every iteration reads them
#: twice, and once they outgrow the caches the products slow down 4-10x per trial (measured: m = 100, d = 200,
#: 3 MiB vs 6 MiB and more, on a 2-core EPYC with 1 MiB L2 per core and a shared 32 MiB L3). Small-m columns of a
#: grid batch several cells; a cell above the cap is still one batch.
BATCH_BYTES = 4 * 2**20

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


@dataclass(frozen=True)
class Execution:
    """How the trials of a cell are computed — not what they compute, so none of it enters a run id.

    Attributes
    ----------
    batched : bool
        Run the trials of a cell as one batched computation where the solver has a batched twin
        (`solvers.batched`); otherwise, or when false, one by one.
    backend : {"numpy", "torch"}
        Array library of the batched solvers.
    device : str, optional
        Torch device ("cpu", "cuda", "cuda:1", …); None: CUDA when available, else the CPU.
    """

    batched: bool = True
    backend: str = "numpy"
    device: str | None = None


def execution(cfg: DictConfig) -> Execution:
    """``experiment.batched``, ``experiment.backend`` and ``experiment.device``, validated (one-line
    ``ValueError``; a torch device is checked by allocating on it). Absent keys take the `Execution` defaults."""
    settings = cfg.experiment
    batched = settings.get("batched", True)
    backend = settings.get("backend", "numpy")
    device = settings.get("device", None)
    if not isinstance(batched, bool):
        raise ValueError(f"experiment.batched={batched!r} must be true or false")
    if backend not in BACKENDS:
        raise ValueError(f"experiment.backend={backend!r} must be one of {', '.join(BACKENDS)}")
    if device is not None and not isinstance(device, str):
        raise ValueError(f"experiment.device={device!r} must be null or a device name such as cpu or cuda")
    if batched:
        try:
            get_backend(backend, device)
        except ValueError as exc:
            raise ValueError(f"experiment.backend={backend}, experiment.device={device}: {exc}") from None
    return Execution(batched, str(backend), device)


def plan_cells(cfg: DictConfig) -> list[Cell]:
    """Every cell of the configured grid, validated before anything runs (one-line ``ValueError``)."""
    execution(cfg)
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
            rid = run_id(cell_problem, identity(cell_solver), seed, experiment=str(cfg.experiment.name),
                         trials=trials, cell=[round(float(delta), 10), round(float(rho), 10)])
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


def cell_groups(cells: Sequence[Cell], how: Execution) -> list[list[Cell]]:
    """The units of work of a grid: one cell each, or with ``how.batched`` the cells that share m (one δ column)
    in groups whose stacked sensing matrices stay within `BATCH_BYTES`, each group one batched computation (its
    trials differ in k alone). A batched iteration has a fixed cost (~0.2 ms of numpy calls) beside its
    products, so small cells are cheaper together; large ones are not, as their products leave the caches."""
    if not how.batched:
        return [[cell] for cell in cells]
    columns: dict[int, list[Cell]] = {}
    for cell in sorted(cells, key=lambda cell: -cell.m):  # the costliest columns first: workers finish together
        columns.setdefault(cell.m, []).append(cell)
    groups = []
    for column in columns.values():
        cell = column[0]
        size = max(1, BATCH_BYTES // (len(cell.seeds) * cell.m * int(cell.problem["d"]) * 8))
        groups += [column[i:i + size] for i in range(0, len(column), size)]
    return groups


def solve_cell(cell: Cell, experiment: str, rule: Rule, how: Execution = Execution()) -> pd.DataFrame:
    """Solve every trial of a cell and return one row per trial: its final iterate's row (`solve_cells`)."""
    return solve_cells([cell], experiment, rule, how)[0]


def solve_cells(cells: Sequence[Cell], experiment: str, rule: Rule, how: Execution = Execution()
                ) -> list[pd.DataFrame]:
    """Solve every trial of ``cells`` (one BLAS thread) and return, per cell, one row per trial: the final row.

    Batched (``how.batched``) — all trials of the cells as one computation — when the solver has a batched twin
    and the instances are least squares, else one by one; the rows are the same either way (``time_s`` apart:
    a batched trial's is its share of the batch). Batched cells must share (m, d) (`cell_groups`).
    """
    interrupt.quiet_pool_worker()
    with threadpool_limits(limits=1), _one_torch_thread(how):
        specs = [resolved(cell.problem) for cell in cells]  # once per cell, not per trial
        problems = [[build(spec, "problem", seed=seed) for seed in cell.seeds] for spec, cell in zip(specs, cells)]
        solvers = [build(cell.solver, "solver") for cell in cells]
        results = _batched(solvers, problems, how) if how.batched else None
        if results is None:
            results = [[build(cell.solver, "solver").run(problem) for problem in instances]
                       for cell, instances in zip(cells, problems)]
    return [_cell_rows(*parts, experiment, rule) for parts in zip(cells, problems, solvers, results)]


def _cell_rows(cell: Cell, problems: list[Any], solver: Any, results: list[Result], experiment: str,
               rule: Rule) -> pd.DataFrame:
    """One row per trial of a cell (the final trace row with the identity and parameter columns)."""
    # one frame for the cell (the trials share every identity column but the seed and the outcome): assembling
    # a frame per trial cost more than a batched solve
    rows = tidy_rows([result.trace[-1] for result in results], run=cell.run_id, experiment=experiment,
                     problem=problems[0].name, solver=solver.name, seed=cell.seeds[0],
                     problem_params=problems[0].params, solver_params=solver.get_params(),
                     status=results[0].status, message=results[0].message)
    rows = rows.assign(seed=[int(seed) for seed in cell.seeds], status=[result.status for result in results],
                       message=[result.message for result in results], trial=np.arange(len(results)))
    rows = rows.assign(p_delta=cell.delta, p_rho=cell.rho,
                       support_exact=rows["support_recall"].eq(1.0) & rows["support_size"].eq(cell.k))
    return rows.assign(success=rule.apply(rows), success_rule=str(rule))


def _batched(solvers: list[Any], problems: list[list[Any]], how: Execution) -> list[list[Result]] | None:
    """The results of the batched twin of the cells' solver on all their instances (one batch), split by cell; or
    None when the solver has no twin or the instances are not least squares (the trials then run one by one)."""
    twin, reason = batched_for(solvers[0])
    instances = [problem for cell in problems for problem in cell]
    if twin is None or not all("least_squares" in problem.capabilities for problem in instances):
        log.debug("trials run one by one: %s", reason or "the instances are not least-squares problems")
        return None
    per_trial = [solver for solver, cell in zip(solvers, problems) for _ in cell]
    flat = twin(solvers[0], backend=how.backend, device=how.device).run(ProblemBatch.from_problems(instances),
                                                                         solvers=per_trial)
    bounds = np.cumsum([0] + [len(cell) for cell in problems])
    return [flat[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]


@contextmanager
def _one_torch_thread(how: Execution) -> Iterator[None]:
    """One intra-op thread for torch while a cell runs (its own pool, which threadpoolctl does not limit), so
    joblib's workers do not oversubscribe the cores; restored afterwards."""
    if not (how.batched and how.backend == "torch"):
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
