"""Experiment kind ``robustness``: where does each solver win and lose off the clean path?

A grid over measurement noise (SNR in dB) × design correlation (Toeplitz ρ^|i−j| columns) of small sparse
regressions (n > d, so every method applies, the Newton-type ones included), ``trials`` instances per cell.
Every solver of ``experiment.solvers`` runs on every instance with the budget k = k*, and each final point is
scored three ways:

- ``objective_gap`` = f(x)/f_best − 1 against the best k-subset objective, certified by enumeration
  (`problems.oracle.best_subset`): with noise x* is not the minimiser, so this is what a k-sparse solver can
  be asked for;
- ``support_f1``: F1 score of supp(x) against supp(x*);
- ``rel_error``: ‖x − x*‖/‖x*‖.

One Hydra job runs the whole grid (cells in joblib workers, one BLAS thread each, one parquet per cell so a
rerun resumes). The report writes ``robustness_cells.csv`` (per cell and solver: medians and quartiles over
trials), a heat map of each metric per solver, and the **winner map**: per cell, the solver(s) with the
lowest median objective gap, ties (within ``experiment.tie_tol`` relative) shown together. Exact I-OBS does not
compete by default (``experiment.not_competing``): on a quadratic its step *is* the best k-subset of the
least-squares fit (Lemma 2), found by exhaustive search, so it equals the oracle. Budget-free solvers (the Lasso)
appear in the F1 and error maps only: their answers may be denser than k.

    obsbench experiment=robustness
    obsbench experiment=robustness experiment.trials=20 'experiment.snr_db=[40,20,10,5,0]'
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig, ListConfig
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from experiments.execution import interrupt
from experiments.kinds.phase_grid import trial_seed
from experiments.store.results import ResultStore, load, run_id, tidy_rows
from experiments.execution.runner import build, identity, resolved, results_root
from problems import validation
from solvers.base import REGISTRY, support_of

log = logging.getLogger(__name__)

METRICS = ("objective_gap", "support_f1", "rel_error")
#: A final point with |objective gap| at most this found the best k-subset (rounding aside).
BEST_SUBSET_TOL = 1e-9


@dataclass(frozen=True)
class Cell:
    """One (SNR, ρ) cell: the problem config of its instances, their seeds and the stored run id."""

    snr_db: float
    rho: float
    problem: dict[str, Any]
    seeds: tuple[int, ...]
    run_id: str


def grid_values(values: Any, name: str) -> list[float]:
    """A non-empty list of finite numbers from the config."""
    if not isinstance(values, (list, tuple, ListConfig)) or len(values) == 0:
        raise ValueError(f"experiment.{name}={values!r} must be a non-empty list of numbers")
    out = [float(v) for v in values]
    if not all(np.isfinite(out)):
        raise ValueError(f"experiment.{name}={list(values)} must be finite")
    return out


def solver_configs(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The solvers of the comparison, name -> resolved config, each with k = k* (null)."""
    solvers = {name: {**resolved(node), "k": None} if "k" in node else resolved(node)
               for name, node in cfg.experiment.solvers.items()}
    if not solvers:
        raise ValueError("experiment.solvers is empty")
    return solvers


def plan_cells(cfg: DictConfig) -> list[Cell]:
    """Every cell of the grid, validated (one-line ``ValueError``)."""
    experiment, problem = cfg.experiment, resolved(cfg.problem)
    if problem.get("matrix") != "toeplitz" or "rho" not in problem or "snr_db" not in problem:
        raise ValueError("experiment=robustness needs a compressed-sensing style problem with matrix=toeplitz, rho "
                         "and snr_db (e.g. problem=robustness_regression)")
    rhos = grid_values(experiment.rhos, "rhos")
    if not all(0 <= r < 1 for r in rhos):
        raise ValueError(f"experiment.rhos={rhos} must lie in [0, 1)")
    snrs = grid_values(experiment.snr_db, "snr_db")
    trials, seed = experiment.trials, cfg.seed
    validation.integer("experiment.trials", trials, low=1)
    validation.seed(seed)
    solvers = solver_configs(cfg)
    cells = []
    for snr in snrs:
        for rho in rhos:
            cell_problem = {**problem, "rho": rho, "snr_db": snr, "noise_std": 0.0}
            # seeds keyed by the cell's values (not its position): a grid that grows keeps its old cells
            seeds = tuple(trial_seed(seed, int(problem["d"]), int(round(snr * 1000)) % 2**31,
                                     int(round(rho * 1000)), t) for t in range(trials))
            rid = run_id(cell_problem, {name: identity(config) for name, config in solvers.items()}, seed,
                         experiment=str(experiment.name), trials=trials, max_subsets=int(experiment.max_subsets))
            cells.append(Cell(snr, rho, cell_problem, seeds, rid))
    return cells


def validate(cfg: DictConfig, checked: set[str] | None = None) -> None:
    """Sweep validator: the grid, one instance, every solver built and validated on it, the oracle's size."""
    from math import comb

    cells = plan_cells(cfg)
    instance = build(cells[0].problem, "problem", seed=0)
    for name, node in solver_configs(cfg).items():
        build(node, f"experiment.solvers.{name}").validate(instance)
    subsets = comb(instance.d, instance.k_star)
    if subsets > int(cfg.experiment.max_subsets):
        raise ValueError(f"the exact oracle would score C({instance.d}, {instance.k_star}) = {subsets} subsets per "
                         f"instance, more than experiment.max_subsets={cfg.experiment.max_subsets}")


def support_f1(x: np.ndarray, truth: np.ndarray) -> float:
    """F1 score of the nonzeros of ``x`` (relative to max|x|, see `solvers.base.support_of`) against ``truth``."""
    found = support_of(x)
    hits = np.intersect1d(found, truth).size
    if hits == 0:
        return 0.0
    precision, recall = hits / found.size, hits / truth.size
    return 2 * precision * recall / (precision + recall)


def solve_cell(cell: Cell, solvers: dict[str, dict[str, Any]], experiment: str, max_subsets: int) -> pd.DataFrame:
    """Every solver on every trial of a cell: one row per (trial, solver), the final point's metrics."""
    from problems.oracle import best_subset

    interrupt.quiet_pool_worker()
    frames = []
    with threadpool_limits(limits=1):
        for trial, seed in enumerate(cell.seeds):
            problem = build(cell.problem, "problem", seed=seed)
            oracle = best_subset(problem, problem.k_star, max_subsets=max_subsets)
            for name, node in solvers.items():
                solver = build(node, "solver")
                result = solver.run(problem)
                frame = tidy_rows(result.trace[-1:], run=cell.run_id, experiment=experiment, problem=problem.name,
                                  solver=solver.name, seed=seed, problem_params=problem.params,
                                  solver_params=solver.get_params(), status=result.status, message=result.message,
                                  reference=(oracle.objective, oracle.how))
                found = support_of(result.x)
                frames.append(frame.assign(trial=trial, support_f1=support_f1(result.x, problem.true_support),
                                           oracle_support=json.dumps(oracle.support.tolist()),
                                           best_support=bool(np.array_equal(found, np.sort(oracle.support)))))
    return pd.concat(frames, ignore_index=True).assign(p_cell_snr_db=cell.snr_db, p_cell_rho=cell.rho)


def run(cfg: DictConfig) -> pd.DataFrame:
    """Run (or resume) the grid; returns one row per (cell, trial, solver)."""
    cells = plan_cells(cfg)
    solvers = solver_configs(cfg)
    store = ResultStore(results_root(cfg))
    pending = [cell for cell in cells if not store.has(cell.run_id)]
    log.info("robustness grid: %d cells x %d trials x %d solvers, %d cells already stored", len(cells),
             cfg.experiment.trials, len(solvers), len(cells) - len(pending))
    if pending:
        parallel = Parallel(n_jobs=int(cfg.experiment.n_jobs), return_as="generator_unordered")
        results = parallel(delayed(solve_cell)(cell, solvers, str(cfg.experiment.name), int(cfg.experiment.max_subsets))
                           for cell in pending)
        for frame in tqdm(results, total=len(pending), unit="cell", desc="robustness",
                          disable=not cfg.experiment.progress, mininterval=0.5):
            store.write(str(frame["run_id"].iloc[0]), frame)
    return load(store.root, [cell.run_id for cell in cells])


def cell_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (SNR, ρ, solver): trials, and the median and quartiles of every metric over the trials."""
    rows = frame.rename(columns={"p_cell_snr_db": "snr_db", "p_cell_rho": "rho"})
    grouped = rows.groupby(["snr_db", "rho", "solver"], sort=True)
    table = grouped.size().rename("trials").to_frame()
    for metric in METRICS:
        values = grouped[metric]
        table[f"{metric}_median"] = values.median()
        table[f"{metric}_q25"] = values.quantile(0.25)
        table[f"{metric}_q75"] = values.quantile(0.75)
    # how often the best subset itself was found (gap at rounding level): the median hides the misses
    table["best_subset_rate"] = grouped["objective_gap"].agg(lambda g: float((g.abs() <= BEST_SUBSET_TOL).mean()))
    # the best subset's support, whether or not the weights are its least-squares fit (CoSaMP and Topk-I-OBS
    # keep the unrefitted weights, so their gap stays > 0 on the right support)
    table["best_support_rate"] = grouped["best_support"].mean()
    table["failed"] = grouped["status"].agg(lambda s: int(s.isin(("error", "diverged")).sum()))
    return table.reset_index()


def winners(table: pd.DataFrame, tie_tol: float, budgeted: Sequence[str]) -> pd.DataFrame:
    """Per cell, the budgeted solvers whose median objective gap is within ``tie_tol`` (relative to 1 + best
    gap) of the lowest: one row per cell with ``winners`` ("a = b" for ties) and the best median gap."""
    rows = []
    for (snr, rho), cell in table[table["solver"].isin(budgeted)].groupby(["snr_db", "rho"], sort=True):
        gaps = cell.set_index("solver")["objective_gap_median"]
        best = float(gaps.min())
        tied = sorted(gaps.index[gaps <= best + tie_tol * (1.0 + best)])
        rows.append(dict(snr_db=snr, rho=rho, winners=" = ".join(tied), best_gap=best, n_winners=len(tied)))
    return pd.DataFrame(rows)


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Cell table and winner table (CSV, logged), heat maps per metric, winner map."""
    from plots.robustness import heat_maps_figure, winner_map_figure
    from plots.style import save

    table = cell_table(frame)
    budgeted = [name for name in sorted(frame["solver"].unique()) if name in REGISTRY and REGISTRY[name].needs_k]
    excluded = tuple(str(name) for name in cfg.experiment.get("not_competing", []))
    best = winners(table, float(cfg.experiment.tie_tol), [name for name in budgeted if name not in excluded])
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "robustness_cells.csv", index=False)
    best.to_csv(out_dir / "robustness_winners.csv", index=False)
    overall = table.groupby("solver")[[f"{m}_median" for m in METRICS] + ["best_subset_rate",
                                                                          "best_support_rate"]].mean()
    overall = overall.sort_values("objective_gap_median").rename(columns=lambda c: f"mean over cells of {c}")
    log.info("per solver, averaged over the cells (objective gap to the exact best k-subset)\n%s",
             overall.to_string(float_format=lambda v: f"{v:.3g}"))
    log.info("winners (lowest median objective gap; ties within %g)\n%s", cfg.experiment.tie_tol,
             best.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    paths = []
    for metric in METRICS:
        # a budget-free solver (the Lasso) may be denser than k, so its gap to the best k-subset is no verdict
        shown = table[table["solver"].isin(budgeted)] if metric == "objective_gap" else table
        paths += save(heat_maps_figure(shown, metric), out_dir / f"robustness_{metric}")
    return paths + save(winner_map_figure(best, excluded), out_dir / "robustness_winners")
