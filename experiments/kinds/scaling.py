"""Experiment kind ``scaling``: wall time per solve and per iteration against the dimension d, with the
fitted exponent of each solver.

One Hydra job runs one solver on instances of growing d (m = m_ratio·d, k* = k_ratio·d) for ``repeats`` seeds,
one stored run per (solver, d, seed) through `experiments.execution.runner.execute` (so a rerun skips stored runs and
keeps their timings). Runs inside a job are sequential, so they do not compete for cores; do not combine
this experiment with a parallel launcher if the timings matter.

    obsbench experiment=scaling                                  # IHT, CoSaMP, basis pursuit; d = 64 ... 512
    obsbench -m experiment=scaling solver=iht,cosamp experiment.dims=[128,256,512,1024,2048] experiment.repeats=5

The exponent is the least-squares slope β of log t = α + β log d through the median time over seeds at each d
(per solve, and per iteration), reported with its standard error.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig

from experiments.store.results import ResultStore, final_rows
from experiments.execution.runner import RunSpec, execute, prepare, resolved, results_root
from experiments.store.summary import config_groups, format_table, summarise
from problems import validation

log = logging.getLogger(__name__)

#: Columns that vary inside one scaling curve (never part of a configuration's group label).
SIZE_COLUMNS = ("p_d", "p_m", "p_k_star", "s_k")


def dimensions(spec: Any) -> list[int]:
    """The list of dimensions d, validated (positive integers, at least two distinct values)."""
    values = list(spec) if isinstance(spec, (list, tuple, ListConfig)) else [spec]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values) or len(set(values)) < 2:
        raise ValueError(f"experiment.dims={values} must list at least two distinct positive integers")
    return sorted(set(values))


def instance(problem: dict[str, Any], d: int, m_ratio: float, k_ratio: float) -> dict[str, Any]:
    """The problem config at dimension d: m = max(1, round(m_ratio·d)), k* = max(1, round(k_ratio·d))."""
    return {**problem, "d": d, "m": max(1, int(round(m_ratio * d))), "k_star": max(1, int(round(k_ratio * d)))}


def plan_specs(cfg: DictConfig) -> list[RunSpec]:
    """One `RunSpec` per (d, seed), seeds ``seed … seed + repeats − 1``; config errors raise before any run."""
    problem, solver, exp = resolved(cfg.problem), resolved(cfg.solver), cfg.experiment
    missing = {"m", "d", "k_star"} - set(problem)
    if missing:
        raise ValueError(f"experiment=scaling needs a problem with m, d and k_star; problem lacks "
                         f"{', '.join(sorted(missing))}")
    for name in ("m_ratio", "k_ratio"):
        if not 0 < float(exp[name]) <= 1:
            raise ValueError(f"experiment.{name}={exp[name]} must lie in (0, 1]")
    repeats, seed = exp.repeats, cfg.seed
    validation.integer("experiment.repeats", repeats, low=1)
    validation.seed(seed)
    return [RunSpec(experiment=str(exp.name), problem=instance(problem, d, float(exp.m_ratio), float(exp.k_ratio)),
                    solver=solver, seed=seed + r)
            for d in dimensions(exp.dims) for r in range(repeats)]


def validate(cfg: DictConfig, checked: set[str] | None = None) -> list[RunSpec]:
    """The sweep validator (``experiment.validate``): build every (d, seed) instance and the solver, so a
    config error at any d (e.g. k* > m) raises a one-line ``ValueError`` before the first timing."""
    specs = plan_specs(cfg)
    key = json.dumps([[spec.problem, spec.solver, spec.seed] for spec in specs], sort_keys=True, default=str)
    if checked is None or key not in checked:
        for spec in specs:
            prepare(spec)
    if checked is not None:
        checked.add(key)
    return specs


def run(cfg: DictConfig) -> pd.DataFrame:
    """Run (or read back) every (d, seed) of the job's solver, smallest d first; returns all their rows."""
    specs = validate(cfg)
    store = ResultStore(results_root(cfg))
    if cfg.experiment.warmup and not all(store.has(spec.run_id) for spec in specs):
        problem, solver = prepare(specs[0])
        solver.run(problem)  # not stored: first-call costs (imports, caches) stay out of the timings
    return pd.concat([execute(spec, store) for spec in specs], ignore_index=True)


def timings(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run: ``group``, ``solver``, ``d``, ``m``, ``k``, ``iterations``, ``time_per_solve`` and
    ``time_per_iteration`` in seconds.

    Per iteration = (t_final − t_0)/iterations for iterative solvers, whose row 0 holds the set-up time
    (e.g. λ_max for a 1/L step); direct solvers record one row and use t_final/iterations, their
    iterations being those reported by the back end (simplex / LARS / interior-point steps).
    """
    ordered = frame.sort_values(["run_id", "iteration"])
    first, last = ordered.groupby("run_id").head(1).set_index("run_id"), final_rows(frame).set_index("run_id")
    iterations = last["iteration"].clip(lower=1)
    iterative = ordered.groupby("run_id").size().reindex(last.index) > 1
    per_iteration = np.where(iterative, last["time_s"] - first["time_s"].reindex(last.index), last["time_s"])
    out = pd.DataFrame({"group": config_groups(last, exclude=SIZE_COLUMNS), "solver": last["solver"],
                        "d": last["p_d"], "m": last["p_m"], "k": last["p_k_star"], "seed": last["seed"],
                        "status": last["status"], "iterations": last["iteration"], "time_per_solve": last["time_s"],
                        "time_per_iteration": per_iteration / iterations})
    return out.reset_index()


def fit_exponent(d: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """Least-squares slope β (and its standard error) of log t = α + β log d; NaN without two distinct d."""
    keep = np.isfinite(seconds) & (seconds > 0)
    x, y = np.log(np.asarray(d, dtype=float)[keep]), np.log(np.asarray(seconds, dtype=float)[keep])
    if np.unique(x).size < 2:
        return float("nan"), float("nan")
    if x.size == 2:
        return float((y[1] - y[0]) / (x[1] - x[0])), float("nan")
    (slope, _), cov = np.polyfit(x, y, 1, cov=True)
    return float(slope), float(np.sqrt(cov[0, 0]))


def exponent_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: runs, d range, fitted exponents (per solve, per iteration) with standard errors,
    and the median times at the largest d.

    The exponents are fitted to the median over seeds at each d (a run slowed down by another process on a
    shared machine moves a median less than a least-squares fit through every run).
    """
    rows = []
    for (group, solver), part in runs.groupby(["group", "solver"], sort=True):
        medians = part.groupby("d")[["time_per_solve", "time_per_iteration"]].median()
        solve, solve_se = fit_exponent(medians.index, medians["time_per_solve"])
        step, step_se = fit_exponent(medians.index, medians["time_per_iteration"])
        largest = part[part["d"] == part["d"].max()]
        rows.append(dict(group=group, solver=solver, runs=len(part), d_min=part["d"].min(), d_max=part["d"].max(),
                         exponent_solve=solve, se_solve=solve_se, exponent_iteration=step, se_iteration=step_se,
                         median_time_per_solve_at_d_max=largest["time_per_solve"].median(),
                         median_time_per_iteration_at_d_max=largest["time_per_iteration"].median(),
                         median_iterations=part["iterations"].median()))
    return pd.DataFrame(rows)


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Summary and exponent tables (logged, CSV) and the log-log scaling figure (PNG + PDF)."""
    from plots.scaling import scaling_figure
    from plots.style import save

    summary = summarise(frame, success_tol=float(cfg.experiment.success_tol))
    runs = timings(frame)
    table = exponent_table(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "summary.csv", index=False)
    runs.to_csv(out_dir / "scaling_runs.csv", index=False)
    table.to_csv(out_dir / "scaling.csv", index=False)
    log.info("summary (success: final relative error <= %g)\n%s", cfg.experiment.success_tol, format_table(summary))
    log.info("fitted exponents: time ~ d^beta (least squares on log-log, +- standard error)\n%s\ntable: %s",
             format_table(table), out_dir / "scaling.csv")
    return save(scaling_figure(runs, table), out_dir / "scaling")
