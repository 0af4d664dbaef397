"""Experiment kind ``phase_transition``: Donoho–Tanner phase diagrams of one solver on a (δ, ρ) grid.

δ = m/d (undersampling) on the x axis, ρ = k/m (sparsity) on the y axis. One Hydra job runs the whole grid of
one (solver, problem) configuration: every cell solves ``trials`` independent instances with joblib workers
(one BLAS thread each) — as one batched computation (`solvers.batched`) where the solver has a batched twin,
``experiment.batched`` — and stores the final row of each trial in one parquet file per cell, so a rerun only
computes the missing cells (whether they were computed batched or not: that is not part of a run id). Hydra
multirun sweeps the outer axes (solver, ensemble); the report draws the
success-probability heat maps with the fitted 50% curves and the ℓ1 weak threshold, and a comparison figure.

    obsbench experiment=phase_transition                                      # d=50, 6x6 grid, 5 trials
    obsbench -m experiment=phase_transition solver=basis_pursuit,iht,cosamp
    obsbench experiment=phase_transition problem.d=200 experiment.deltas=15 experiment.rhos=15 experiment.trials=20
    obsbench experiment=phase_transition solver=iht experiment.backend=torch experiment.device=cuda experiment.n_jobs=1
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig
from tqdm.auto import tqdm

from experiments.analysis.donoho_tanner import weak_threshold_curve
from experiments.kinds.phase_grid import CELL_COLUMNS, Rule, cell_groups, execution, plan_cells, solve_cells
from experiments.store.results import ResultStore, load
from experiments.execution.runner import resolved, results_root
from experiments.store.summary import config_groups
from experiments.analysis.selection import selection_table
from experiments.analysis.transition_fit import transition_curves

log = logging.getLogger(__name__)


def workers(cfg: DictConfig) -> int:
    """``experiment.n_jobs``, validated (a non-zero integer; −1 means every core)."""
    n_jobs = cfg.experiment.n_jobs
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"experiment.n_jobs={n_jobs!r} must be a non-zero integer (-1: every core)")
    return n_jobs


def validate(cfg: DictConfig, checked: set[str] | None = None) -> None:
    """The sweep validator (``experiment.validate``): the success rule, the worker count, the grid, and one
    probe instance of the problem and solver; raises a one-line ``ValueError`` before anything runs."""
    key = json.dumps([resolved(cfg.problem), resolved(cfg.solver), resolved(cfg.experiment)], sort_keys=True,
                     default=str)
    if checked is not None and key in checked:
        return
    Rule(str(cfg.experiment.success), float(cfg.experiment.success_tol))
    workers(cfg)
    plan_cells(cfg)
    if checked is not None:
        checked.add(key)


def run(cfg: DictConfig) -> pd.DataFrame:
    """Run (or resume) the job's grid and return the final rows of every trial of every cell, in grid order (the
    cells computed now as computed, the others as stored)."""
    cells = plan_cells(cfg)
    rule = Rule(str(cfg.experiment.success), float(cfg.experiment.success_tol))
    n_jobs = workers(cfg)
    how = execution(cfg)
    store = ResultStore(results_root(cfg))
    pending = [cell for cell in cells if not store.has(cell.run_id)]
    log.info("phase diagram of %s: %d cells x %d trials, %d cells already stored (%s)", cfg.solver._target_,
             len(cells), cfg.experiment.trials, len(cells) - len(pending),
             f"batched trials, {how.backend} backend" if how.batched else "one trial at a time")
    computed: dict[str, pd.DataFrame] = {}
    if pending:
        groups = cell_groups(pending, how)
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        results = parallel(delayed(solve_cells)(group, str(cfg.experiment.name), rule, how) for group in groups)
        with tqdm(total=len(pending), unit="cell", desc="phase diagram", disable=not cfg.experiment.progress,
                  mininterval=0.5) as bar:
            for frames in results:
                for frame in frames:
                    computed[str(frame["run_id"].iloc[0])] = frame
                    store.write(str(frame["run_id"].iloc[0]), frame)
                bar.update(len(frames))
    # the cells computed now are in memory: only those stored before are read back (the report reads them all)
    stored = load(store.root, [cell.run_id for cell in cells if cell.run_id not in computed])
    frames = [frame for frame in (stored, *computed.values()) if not frame.empty]
    if not frames:
        return stored
    order = {cell.run_id: i for i, cell in enumerate(cells)}
    frame = pd.concat(frames, ignore_index=True)
    return frame.iloc[frame["run_id"].map(order).argsort(kind="stable")].reset_index(drop=True)


def success_table(frame: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """One row per (configuration, cell): nominal δ and ρ, sizes, actual m/d and k/m, trials, successes, rate.

    Success is recomputed from the stored error and support columns with ``rule``, so a report can change
    the criterion without rerunning.
    """
    rows = frame.assign(success=rule.apply(frame), group=config_groups(frame, exclude=CELL_COLUMNS))
    table = rows.groupby(["group", "solver", "p_delta", "p_rho", "p_d", "p_m", "p_k_star"], sort=True).agg(
        trials=("success", "size"), successes=("success", "sum"), median_time_s=("time_s", "median"))
    table = table.reset_index().rename(columns={"p_delta": "delta", "p_rho": "rho", "p_d": "d", "p_m": "m",
                                                "p_k_star": "k"})
    return table.assign(delta_actual=table["m"] / table["d"], rho_actual=table["k"] / table["m"],
                        success_rate=table["successes"] / table["trials"])


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Per-cell success table and 50% curves (CSV, logged), the phase diagram(s) and the comparison figure."""
    from plots.phase import phase_diagram_figure, selection_map_figure, transition_comparison_figure
    from plots.style import save

    rule = Rule(str(cfg.experiment.success), float(cfg.experiment.success_tol))
    cells = success_table(frame, rule)
    curves = transition_curves(cells)
    out_dir.mkdir(parents=True, exist_ok=True)
    cells.to_csv(out_dir / "phase_cells.csv", index=False)
    curves.to_csv(out_dir / "phase_transition.csv", index=False)
    log.info("50%% success curves (success: %s; logistic fit in rho at each delta, +- standard error)\n%s", rule,
             curves.drop(columns=["low", "high"]).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    log.info("table: %s", out_dir / "phase_transition.csv")
    theory = weak_threshold_curve()
    paths = save(phase_diagram_figure(cells, curves, theory, rule=str(rule)), out_dir / "phase_diagram")
    paths += save(transition_comparison_figure(curves, theory, rule=str(rule)), out_dir / "phase_comparison")
    if cells["group"].nunique() > 1:  # an algorithm-selection map needs something to select from
        selection = selection_table(frame.assign(success=rule.apply(frame),
                                                 group=config_groups(frame, exclude=CELL_COLUMNS)))
        selection.to_csv(out_dir / "selection.csv", index=False)
        log.info("algorithm selection (fastest with success >= 50%%): %s", out_dir / "selection.csv")
        paths += [out_dir / "selection.csv",
                  *save(selection_map_figure(selection, curves, theory, rule=str(rule)), out_dir / "selection_map")]
    return paths
