"""Sweep summaries: one table per sweep, per solver (and problem), from the tidy result rows."""

from __future__ import annotations

import pandas as pd

from experiments.store.results import final_rows
from experiments.store.status import INTERRUPTED
from solvers.base import STATUSES


def summarise(frame: pd.DataFrame, success_tol: float = 1e-4) -> pd.DataFrame:
    """Per (problem, solver): runs, success rate (final relative error ≤ ``success_tol``), median iterations,
    median time, median final relative error, the median objective gap to the best k-subset and how it was
    certified (where the runs have an oracle reference), and the count of each status."""
    last = final_rows(frame)
    if last.empty:
        return pd.DataFrame()
    # without a known x* (real data) success is undefined, not 0: the objective gap column carries the verdict
    last = last.assign(success=(last["rel_error"] <= success_tol).where(last["rel_error"].notna()))
    grouped = last.groupby(["problem", "solver"], sort=True)
    table = grouped.agg(runs=("run_id", "size"), success_rate=("success", "mean"),
                        median_iterations=("iteration", "median"), median_time_s=("time_s", "median"),
                        median_rel_error=("rel_error", "median"))
    if "objective_gap" in last and last["objective_gap"].notna().any():  # against the best k-subset (oracle)
        table = table.join(grouped.agg(median_objective_gap=("objective_gap", "median"),
                                       oracle=("oracle", lambda how: ", ".join(sorted(set(how.dropna()) - {""})))))
    counts = last.pivot_table(index=["problem", "solver"], columns="status", values="run_id", aggfunc="count",
                              fill_value=0)
    counts = counts.reindex(columns=[s for s in (*STATUSES, INTERRUPTED) if s in counts.columns])
    return table.join(counts).reset_index()


def format_table(table: pd.DataFrame) -> str:
    """A fixed-width text rendering for the console."""
    if table.empty:
        return "(no runs)"
    return table.to_string(index=False, float_format=lambda v: f"{v:.3g}")


def config_groups(frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> pd.Series:
    """A label per row naming its configuration: the solver plus every problem parameter (``p_``) that varies
    across ``frame`` and every solver parameter (``s_``) that varies between runs of the same solver (except
    ``exclude``), e.g. ``"cosamp (matrix=rademacher)"``.

    Rows of the same configuration share a label, so grouping by it separates the outer axes of a sweep
    (solver, ensemble, solver parameters) from the inner axes named in ``exclude`` (grid cells, seeds).
    """
    if frame.empty:
        return pd.Series([], dtype=str, index=frame.index)
    text = frame.astype({c: str for c in frame.columns if c.startswith(("p_", "s_"))})
    varying = [c for c in frame.columns if c not in exclude and (
        (c.startswith("p_") and text[c].nunique() > 1)
        or (c.startswith("s_") and text.groupby("solver")[c].nunique().max() > 1))]

    def label(row: pd.Series) -> str:
        details = ", ".join(f"{c[2:]}={row[c]}" for c in varying)
        return f"{row['solver']} ({details})" if details else str(row["solver"])

    return frame.apply(label, axis=1)
