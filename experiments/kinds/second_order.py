"""Experiment kind ``second_order``: I-OBS against the field's second-order sparse solvers.

A sweep over problems × solvers × seeds (each job a convergence run, stored and resumed like any other): the
paper's Figure 1a problem, a compressed-sensing instance (with ``newton_damping`` for the Newton-type methods,
whose Hessian AᵀA is singular when m < d), the quartic and logistic problems and the real-data problems.
Solvers that cannot handle a problem (least-squares-only methods on the logistic loss) are skipped with their
reason. The report draws, per problem, the error against iteration and against solver time, and writes
``second_order.csv``: per problem and solver, the success rate over seeds, the median iterations and time to
reach ``experiment.target`` (relative error to x*, or objective gap to the best k-subset where x* is unknown or
noise moves the minimiser), and the median final error / gap.

    obsbench -m experiment=second_order
    obsbench -m experiment=second_order problem=cs_gaussian seed='range(20)'
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from experiments.kinds import convergence
from experiments.store.summary import format_table

log = logging.getLogger(__name__)

run = convergence.run


def first_reach(rows: pd.DataFrame, metric: str, target: float) -> tuple[float, float]:
    """(iteration, solver time) of the first row of one run whose ``metric`` is at most ``target``; NaNs if none."""
    reached = rows[rows[metric].to_numpy(dtype=float) <= target]
    if reached.empty:
        return float("nan"), float("nan")
    first = reached.sort_values("iteration").iloc[0]
    return float(first["iteration"]), float(first["time_s"])


def comparison_table(frame: pd.DataFrame, success_tol: float, target: float) -> pd.DataFrame:
    """One row per (problem, solver): runs, errors, success rate, iterations / time to ``target`` and the final
    value of the problem's metric (`plots.second_order.comparison_metric`), medians over seeds."""
    from plots.second_order import comparison_metric

    records = []
    for problem, by_problem in frame.groupby("problem", sort=True):
        metric = comparison_metric(by_problem)
        for solver, rows in by_problem.groupby("solver", sort=True):
            finals, reach = [], []
            statuses = []
            for _, run_rows in rows.groupby("run_id"):
                run_rows = run_rows.sort_values("iteration")
                finals.append(float(run_rows[metric].iloc[-1]))
                statuses.append(str(run_rows["status"].iloc[-1]))
                reach.append(first_reach(run_rows, metric, target))
            finals_arr = np.asarray(finals)
            iterations = np.array([r[0] for r in reach])
            times = np.array([r[1] for r in reach])
            reached = np.isfinite(iterations)
            records.append(dict(
                problem=problem, solver=solver, metric=metric, runs=len(finals),
                errors=sum(s == "error" for s in statuses),
                success_rate=float(np.mean(np.abs(finals_arr) <= success_tol)),
                reached_target=float(np.mean(reached)),
                iterations_to_target=float(np.median(iterations[reached])) if reached.any() else float("nan"),
                time_to_target_s=float(np.median(times[reached])) if reached.any() else float("nan"),
                final_median=float(np.median(finals_arr)) if finals else float("nan"),
                oracle=", ".join(sorted(set(rows.get("oracle", pd.Series(dtype=str)).dropna()) - {""})),
            ))
    return pd.DataFrame.from_records(records)


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """``second_order.csv`` (logged) and the figure ``second_order.png/.pdf``."""
    from plots.second_order import second_order_figure
    from plots.style import save

    success_tol, target = float(cfg.experiment.success_tol), float(cfg.experiment.target)
    table = comparison_table(frame, success_tol, target)
    log.info("second-order comparison (success: final error or gap <= %g; target %g)\n%s", success_tol, target,
             format_table(table))
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "second_order.csv", index=False)
    figure = second_order_figure(frame, title="Second-order sparse solvers (median and quartiles over seeds)")
    return [out_dir / "second_order.csv", *save(figure, out_dir / "second_order")]
