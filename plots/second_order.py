"""The second-order comparison: one row of panels per problem, error against iteration and against time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from plots.convergence import describe_instance, plot_convergence
from plots.style import style


def comparison_metric(rows: pd.DataFrame) -> str:
    """What a problem's runs are measured by: the relative error to x* where x* is known and the oracle was not
    needed (noiseless), else the objective gap to the best k-subset (real data, noise)."""
    gap = rows["objective_gap"].to_numpy(dtype=float) if "objective_gap" in rows else np.array([])
    return "objective_gap" if np.isfinite(gap).any() else "rel_error"


def second_order_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Rows: problems; columns: the problem's metric against iteration and against solver time (log-log)."""
    import matplotlib.pyplot as plt

    problems = sorted(frame["problem"].unique())
    with style():
        fig, axes = plt.subplots(len(problems), 2, figsize=(12.5, 3.9 * len(problems)), squeeze=False)
        for row, problem in zip(axes, problems):
            rows = frame[frame["problem"] == problem]
            metric = comparison_metric(rows)
            for ax, against in zip(row, ("iteration", "time")):
                plot_convergence(rows, metric, ax=ax, floor=1e-16, bounds=False, against=against)
                ax.legend(fontsize="x-small", loc="best")
            instance = describe_instance(rows)
            oracle = ", ".join(sorted(set(rows.get("oracle", pd.Series(dtype=str)).dropna()) - {""}))
            note = f"; gap to the {oracle} best k-subset" if metric == "objective_gap" and oracle else ""
            row[0].set_title(f"{problem}" + (f" ({instance})" if instance else "") + note, fontsize="small", loc="left")
        if title:
            fig.suptitle(title)
        # keep the suptitle clear of the first row's panel title (its height shrinks with more rows)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig
