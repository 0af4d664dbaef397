"""Theory figures: measured error curves against the theorems' bounds, and the e_{t+1}-vs-e_t order plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from plots.convergence import per_iteration
from plots.style import solver_color, solver_label, style

FLOOR = 1e-16


def plot_error_with_bounds(frame: pd.DataFrame, ax: Axes) -> Axes:
    """Median error per solver (solid) and, in the same colour, the median certified bound (dashed) —
    the bound computed at every step from the measured previous error — and the bound from estimated
    constants (dotted). Iterations where the theorem's assumptions fail are shaded in the solver's colour."""
    for solver, rows in frame.groupby("solver", sort=True):
        color, label = solver_color(solver, frame["solver"].unique()), solver_label(solver)
        error = per_iteration(rows, "distance").median(axis=1).clip(lower=FLOOR)
        ax.plot(error.index, error, color=color, lw=1.8, label=f"{label} (measured)")
        certified = rows.assign(bound=rows["bound"].where(rows["bound_note"] == ""))
        estimated = rows.assign(bound=rows["bound"].where(rows["bound_note"].str.startswith("estimate")))
        for part, style_, suffix in ((certified, "--", "bound"), (estimated, ":", "bound (estimated constants)")):
            if np.isfinite(part["bound"]).any():
                curve = part.pivot_table(index="iteration", columns="run_id", values="bound").median(axis=1)
                ax.plot(curve.index, curve.clip(lower=FLOOR), color=color, ls=style_, lw=1.4, label=f"{label} {suffix}")
        failing = rows[rows["bound_note"].str.startswith("assumption")]["iteration"].unique()
        if failing.size:
            ax.axvspan(failing.min() - 0.5, failing.max() + 0.5, color=color, alpha=0.07, lw=0,
                       label=f"{label}: assumptions fail")
    ax.set_yscale("log")
    ax.set_xlabel("iteration $t$")
    ax.set_ylabel(r"$\|x_t - x^\star\|_2$")
    return ax


def plot_order(frame: pd.DataFrame, ax: Axes, floor: float = 1e-13) -> Axes:
    """e_{t+1} against e_t on log-log axes (pairs above the floor), with reference lines of slope 1 and 2
    through the median first point: linear convergence follows slope 1, quadratic convergence slope 2."""
    pairs = []
    for solver, rows in frame.groupby("solver", sort=True):
        for _, run in rows.sort_values("iteration").groupby("run_id"):
            e = run["distance"].to_numpy(float)
            keep = (e[:-1] > floor) & (e[1:] > floor)
            pairs.append((solver, e[:-1][keep], e[1:][keep]))
    for solver, before, after in pairs:
        ax.loglog(before, after, "o", ms=3, alpha=0.6, color=solver_color(solver, frame["solver"].unique()))
    for solver in sorted({p[0] for p in pairs}):
        ax.plot([], [], "o", color=solver_color(solver, frame["solver"].unique()), label=solver_label(solver))
    before = np.concatenate([p[1] for p in pairs]) if pairs else np.array([])
    after = np.concatenate([p[2] for p in pairs]) if pairs else np.array([])
    if before.size:
        grid = np.geomspace(before.min(), before.max(), 50)
        # slope 1 through the median pair, slope 2 through the deepest pair (the tail of the fastest method)
        anchors = {1: (np.median(before), np.median(after)), 2: (before[np.argmin(after)], after.min())}
        for slope, ls in ((1, "-"), (2, "--")):
            x0, y0 = anchors[slope]
            ax.loglog(grid, y0 * (grid / x0) ** slope, color="0.4", ls=ls, lw=1, label=f"reference slope {slope}")
        ax.set_ylim(max(after.min() / 10, 1e-17), after.max() * 10)
    ax.set_xlabel(r"$e_t = \|x_t - x^\star\|_2$")
    ax.set_ylabel(r"$e_{t+1}$")
    return ax


def theory_figure(frame: pd.DataFrame, title: str) -> Figure:
    """Left: measured errors with the bounds; right: the convergence-order plot."""
    import matplotlib.pyplot as plt

    with style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
        plot_error_with_bounds(frame, left)
        plot_order(frame, right)
        left.legend(loc="upper right", fontsize=7.5)
        right.legend(loc="upper left", fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
    return fig
