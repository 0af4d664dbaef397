"""Convergence curves: error to x* against iteration, median and spread over seeds, with bound overlays."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from plots.style import solver_color, solver_label, style

METRIC_LABELS = {
    "distance": r"$\|x_t - x^\star\|_2$",
    "rel_error": r"relative error $\|x_t - x^\star\|_2 / \|x^\star\|_2$",
    "objective": r"objective $f(x_t)$",
    "objective_gap": r"objective gap $f(x_t)/f_{\mathrm{best}} - 1$",
}


def per_iteration(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Runs × iterations table of ``column``; a run that stopped early keeps its final value afterwards."""
    wide = frame.pivot_table(index="iteration", columns="run_id", values=column, aggfunc="first")
    return wide.sort_index().ffill()


def _quantiles(wide: pd.DataFrame, floor: float) -> pd.DataFrame:
    clipped = wide.clip(lower=floor)
    return pd.DataFrame({"median": clipped.median(axis=1), "low": clipped.quantile(0.25, axis=1),
                         "high": clipped.quantile(0.75, axis=1)})


def plot_convergence(frame: pd.DataFrame, metric: str = "distance", ax: Axes | None = None,
                     floor: float = 1e-16, bounds: bool = True, against: str = "iteration") -> Axes:
    """Median (line) and inter-quartile band (shade) of ``metric`` per solver against iteration, log scale.

    Solvers with a single recorded point (direct solvers such as basis pursuit) are drawn as a dashed
    horizontal line at their median final value. When the trace holds theoretical bounds, they are drawn
    dashed in the solver's colour. ``against="time"`` puts the median solver time (``time_s``) at each
    iteration on the x axis instead (log scale), so methods with costly iterations are drawn where their time goes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    if not np.isfinite(frame[metric].to_numpy(dtype=float)).any():  # e.g. user data without x*
        ax.text(0.5, 0.5, f"no finite values of {metric}\n(x* unknown?)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_xlabel("iteration $t$")
        return ax
    if against not in ("iteration", "time"):
        raise ValueError(f"against={against!r} must be 'iteration' or 'time'")
    by_time = against == "time"
    right_edge = float(frame["time_s"].max()) if by_time else int(frame["iteration"].max())
    drawn: dict[str, np.ndarray] = {}
    for solver, rows in frame.groupby("solver", sort=True):
        color, label = solver_color(solver, frame["solver"].unique()), solver_label(solver)
        failed = rows.groupby("run_id")["status"].last().eq("error")
        if failed.all():  # nothing to draw: say why in the legend instead of drawing the start point
            reason = str(rows["message"].iloc[-1]).rsplit(";", 1)[-1].strip()  # the fix is stated last
            ax.plot([], [], ls="none", marker="x", color=color, label=f"{label}: error ({reason[:50]})")
            continue
        rows = rows[~rows["run_id"].isin(failed.index[failed])]
        if rows.groupby("run_id").size().max() == 1:  # a direct solver: only its final point exists
            level = max(float(rows[metric].median()), floor)
            ax.axhline(level, color=color, ls="--", lw=1.2, label=f"{label} (final point, {len(rows)} runs)")
            ax.plot(rows["time_s" if by_time else "iteration"].median(), level, "o", color=color, ms=5)
            continue
        stats = _quantiles(per_iteration(rows, metric), floor)
        # median time at each iteration; the start (t = 0) sits at time 0, which a log axis cannot show
        x = per_iteration(rows, "time_s").median(axis=1).to_numpy() if by_time else stats.index.to_numpy()
        shown = x > 0 if by_time else np.ones(x.size, dtype=bool)
        stats, x = stats[shown], x[shown]
        if stats.empty:
            continue
        # a solver whose curve is another's (NSIHT and Topk-I-OBS on least squares) would hide under it:
        # drawn dashed on top and named as equal, so both stay visible
        twin = next((name for name, curve in drawn.items() if curve.shape == stats["median"].shape
                     and np.allclose(curve, stats["median"], rtol=1e-9, atol=0)), None) if not by_time else None
        drawn[label] = stats["median"].to_numpy()
        ax.plot(x, stats["median"], color=color, lw=1.8, ls=(0, (4, 3)) if twin else "-",
                label=f"{label} ({'= ' + twin + '; ' if twin else ''}median, {rows['run_id'].nunique()} runs)")
        ax.fill_between(x, stats["low"], stats["high"], color=color, alpha=0.2, lw=0)
        last = x[-1]
        if last < right_edge:  # a solver that stopped early stays visible: its final value carried to the edge
            # thin and faded, so the carried value is not mistaken for a (dotted) bound
            ax.plot([last, right_edge], [stats["median"].iloc[-1]] * 2, color=color, lw=0.9, alpha=0.45)
            ax.plot(last, stats["median"].iloc[-1], marker="o", ms=4, color=color)
        if bounds and not by_time and metric == "distance" and np.isfinite(rows["bound"]).any():
            bound = per_iteration(rows, "bound").median(axis=1).clip(lower=floor)
            ax.plot(bound.index, bound, color=color, ls=":", lw=1.5, label=f"{label} bound")
    ax.set_yscale("log")
    if by_time:
        ax.set_xscale("log")
    ax.set_xlabel("solver time (s, median over runs)" if by_time else "iteration $t$")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.legend(loc="best")
    return ax


def describe_instance(frame: pd.DataFrame, keys: tuple[str, ...] = ("m", "n", "d", "k_star", "kappa", "rho",
                                                                       "matrix", "snr_db")) -> str:
    """'m=96, d=128, k*=5, ...' from the generator parameters shared by every row (empty if they vary)."""
    parts = []
    for key in keys:
        column = f"p_{key}"
        if column in frame and frame[column].nunique(dropna=False) == 1 and pd.notna(frame[column].iloc[0]):
            value = frame[column].iloc[0]
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # a column with NaN elsewhere in the store reads back as float
            parts.append(f"{'k*' if key == 'k_star' else key}={value}")
    return ", ".join(parts)


def convergence_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Distance to x*, objective and (where a run has an oracle reference) the objective gap, side by side."""
    import matplotlib.pyplot as plt

    gap = frame["objective_gap"].to_numpy(dtype=float) if "objective_gap" in frame else np.array([])
    known_truth = np.isfinite(frame["distance"].to_numpy(dtype=float)).any()
    # without x* (real data) the distance panel would be empty: objective and gap to the oracle instead
    metrics = (["distance"] if known_truth or not np.isfinite(gap).any() else []) + ["objective"] + \
        (["objective_gap"] if np.isfinite(gap).any() else [])
    with style():
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
        axes = list(axes[0])
        for ax, metric in zip(axes, metrics):
            plot_convergence(frame, metric, ax=ax, bounds=metric == "distance")
        if "objective_gap" in metrics:  # say what f_best is: certified or only the best known value
            how = ", ".join(sorted(set(frame["oracle"].dropna()) - {""}))
            axes[-1].set_title(f"against the best k-subset ({how})", fontsize="small")
        left = max(axes, key=lambda ax: len(ax.get_legend_handles_labels()[1]))  # the fullest legend
        handles, labels = left.get_legend_handles_labels()
        for ax in axes:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        columns = min(3, max(1, len(labels)))
        rows = -(-len(labels) // columns)
        fig.legend(handles, labels, loc="lower center", ncol=columns, frameon=False)
        instance = describe_instance(frame)
        if title or instance:
            fig.suptitle(f"{title} ({instance})" if instance else title)
        fig.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    return fig
