"""Runtime scaling: time per solve and per iteration against the dimension d on log-log axes, with the fitted
power law of each solver in the legend."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from plots.phase import group_title
from plots.style import solver_color, style

METRICS = {"time_per_solve": ("time per solve (s)", "exponent_solve", "se_solve"),
           "time_per_iteration": ("time per iteration (s)", "exponent_iteration", "se_iteration")}


def _exponent_text(slope: float, se: float) -> str:
    if not np.isfinite(slope):
        return "no fit"
    return rf"$t \propto d^{{{slope:.2f} \pm {se:.2f}}}$" if np.isfinite(se) else rf"$t \propto d^{{{slope:.2f}}}$"


def plot_scaling(runs: pd.DataFrame, exponents: pd.DataFrame, metric: str, ax: Axes) -> Axes:
    """Median over seeds (markers, min–max bars) of ``metric`` against d per configuration, with the line
    t = e^α d^β fitted to the medians (dashed) and β ± its standard error in the legend."""
    ylabel, slope_column, se_column = METRICS[metric]
    for group, part in runs.groupby("group", sort=True):
        solver = part["solver"].iloc[0]
        color = solver_color(solver, runs["solver"].unique())
        stats = part.groupby("d")[metric].agg(["median", "min", "max"])
        fit = exponents[exponents["group"] == group].iloc[0]
        slope, se = fit[slope_column], fit[se_column]
        spread = [stats["median"] - stats["min"], stats["max"] - stats["median"]]
        ax.errorbar(stats.index, stats["median"], yerr=spread, fmt="o", ms=5, capsize=3, color=color,
                    label=f"{group_title(group, solver)}: {_exponent_text(slope, se)}")
        if np.isfinite(slope):
            valid = stats[stats["median"] > 0]
            intercept = np.mean(np.log(valid["median"])) - slope * np.mean(np.log(valid.index.to_numpy(float)))
            d = np.geomspace(stats.index.min(), stats.index.max(), 50)
            ax.plot(d, np.exp(intercept) * d**slope, ls="--", lw=1.3, color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    dims = np.sort(runs["d"].unique())
    ax.set_xticks(dims, [str(d) for d in dims])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(_dimension_label(runs))
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", fontsize=8)
    return ax


def _dimension_label(runs: pd.DataFrame) -> str:
    """'dimension d (m = 0.5 d, k* = 0.05 d)' when the ratios are the same in every run."""
    m_ratio, k_ratio = (runs["m"] / runs["d"]).round(2), (runs["k"] / runs["d"]).round(2)
    if m_ratio.nunique() == 1 and k_ratio.nunique() == 1:
        return f"dimension d (m ≈ {m_ratio.iloc[0]:g} d, k* ≈ {k_ratio.iloc[0]:g} d)"
    return "dimension d"


def scaling_figure(runs: pd.DataFrame, exponents: pd.DataFrame) -> Figure:
    """Time per solve (left) and per iteration (right) against d, log-log, one colour per solver.

    Parameters
    ----------
    runs : DataFrame
        One row per run: ``group``, ``solver``, ``d``, ``m``, ``k``, ``time_per_solve``, ``time_per_iteration``.
    exponents : DataFrame
        Per ``group``: ``exponent_solve``, ``se_solve``, ``exponent_iteration``, ``se_iteration``.
    """
    import matplotlib.pyplot as plt

    with style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.6))
        plot_scaling(runs, exponents, "time_per_solve", left)
        plot_scaling(runs, exponents, "time_per_iteration", right)
        left.set_title("Wall time per solve")
        right.set_title("Wall time per iteration")
        seeds = runs.groupby(["group", "d"]).size().max()
        fig.suptitle(f"Runtime scaling (median over {seeds} seeds, bars: min–max; "
                     f"dashed: least-squares fit to the medians)")
        fig.tight_layout()
    return fig
