"""Sweep summaries: one table per sweep, per solver (and problem), from the tidy result rows."""

from __future__ import annotations

import pandas as pd

from experiments.results import final_rows
from solvers.base import STATUSES


def summarise(frame: pd.DataFrame, success_tol: float = 1e-4) -> pd.DataFrame:
    """Per (problem, solver): runs, success rate (final relative error ≤ ``success_tol``), median iterations,
    median time, median final relative error, and the count of each status."""
    last = final_rows(frame)
    if last.empty:
        return pd.DataFrame()
    last = last.assign(success=last["rel_error"] <= success_tol)
    grouped = last.groupby(["problem", "solver"], sort=True)
    table = grouped.agg(runs=("run_id", "size"), success_rate=("success", "mean"),
                        median_iterations=("iteration", "median"), median_time_s=("time_s", "median"),
                        median_rel_error=("rel_error", "median"))
    counts = last.pivot_table(index=["problem", "solver"], columns="status", values="run_id", aggfunc="count",
                              fill_value=0)
    counts = counts.reindex(columns=[s for s in STATUSES if s in counts.columns])
    return table.join(counts).reset_index()


def format_table(table: pd.DataFrame) -> str:
    """A fixed-width text rendering for the console."""
    if table.empty:
        return "(no runs)"
    return table.to_string(index=False, float_format=lambda v: f"{v:.3g}")
