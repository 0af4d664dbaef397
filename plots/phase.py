"""Phase diagrams in Donoho–Tanner coordinates: success-probability heat maps with the fitted 50% curve and
the ℓ1 weak threshold, and a comparison of the 50% curves of several solvers on one axis."""

from __future__ import annotations

import math

import matplotlib.patheffects as path_effects
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from plots.style import solver_color, solver_label, style

DELTA_LABEL = r"$\delta = m/d$ (measurements / dimension)"
RHO_LABEL = r"$\rho = k/m$ (nonzeros / measurements)"
THEORY_LABEL = r"$\ell_1$ weak threshold $\rho_W(\delta)$ (Donoho–Tanner, Gaussian $A$, $d\to\infty$)"
EMPIRICAL_COLOR = "#ff3b3b"
_OUTLINE = [path_effects.withStroke(linewidth=3.2, foreground="black")]


def group_title(group: str, solver: str) -> str:
    """A configuration label with the solver's display name (``"cosamp (matrix=dct)"`` → ``"CoSaMP (matrix=dct)"``)."""
    return solver_label(solver) + group[len(solver):] if group.startswith(solver) else group


def cell_edges(centres: np.ndarray) -> np.ndarray:
    """Edges of the cells around sorted centres: midpoints inside, mirrored half-gaps at the ends, in [0, 1]."""
    centres = np.sort(np.asarray(centres, dtype=float))
    if centres.size == 1:
        half = min(centres[0], 1.0 - centres[0], 0.05) or 0.05
        return np.array([centres[0] - half, centres[0] + half])
    inner = (centres[1:] + centres[:-1]) / 2
    first, last = centres[0] - (inner[0] - centres[0]), centres[-1] + (centres[-1] - inner[-1])
    return np.clip(np.concatenate([[first], inner, [last]]), 0.0, 1.0)


def plot_phase_diagram(cells: pd.DataFrame, curve: pd.DataFrame, theory: pd.DataFrame, ax: Axes):
    """One configuration's heat map of the success rate over nominal (δ, ρ) cells, its fitted 50% curve
    (points at the actual δ = m/d, 95% band shaded) and the theory curve. Returns the mesh (for a colour bar)."""
    grid = cells.pivot_table(index="rho", columns="delta", values="success_rate", aggfunc="mean")
    mesh = ax.pcolormesh(cell_edges(grid.columns.to_numpy()), cell_edges(grid.index.to_numpy()),
                         np.ma.masked_invalid(grid.to_numpy()), cmap="viridis", vmin=0.0, vmax=1.0, shading="flat")
    ax.plot(theory["delta"], theory["rho"], color="white", lw=2.0, ls="--", path_effects=_OUTLINE, label=THEORY_LABEL)
    fitted = curve.sort_values("delta_actual")  # NaN points (no transition in range) break the line
    if fitted["rho50"].notna().any():
        errors = [fitted["rho50"] - fitted["low"], fitted["high"] - fitted["rho50"]]
        ax.errorbar(fitted["delta_actual"], fitted["rho50"], yerr=errors, fmt="o-", color=EMPIRICAL_COLOR, ms=4.5,
                    lw=1.8, capsize=3, elinewidth=1.4, path_effects=_OUTLINE,
                    label="empirical 50% success (logistic fit, 95% interval, or the gap between\n"
                          "two rows where success jumps from 100% to 0%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(DELTA_LABEL)
    ax.set_ylabel(RHO_LABEL)
    ax.grid(False)
    return mesh


def _instance_note(cells: pd.DataFrame) -> str:
    """'d=50, 5 trials/cell' for the panel title."""
    dims = sorted(cells["d"].unique())
    trials = sorted(cells["trials"].unique())
    d_text = f"d={dims[0]}" if len(dims) == 1 else f"d in {dims}"
    t_text = f"{trials[0]}" if len(trials) == 1 else f"{trials[0]}-{trials[-1]}"
    return f"{d_text}, {t_text} trials/cell"


def phase_diagram_figure(cells: pd.DataFrame, curves: pd.DataFrame, theory: pd.DataFrame, rule: str = "") -> Figure:
    """One heat-map panel per configuration (``group``), a shared colour bar and one legend.

    Parameters
    ----------
    cells : DataFrame
        Per-cell rows: ``group``, ``solver``, ``delta``, ``rho``, ``d``, ``trials``, ``success_rate``.
    curves : DataFrame
        Fitted 50% points: ``group``, ``delta_actual``, ``rho50``, ``low``, ``high``.
    theory : DataFrame
        The ℓ1 weak threshold as columns ``delta`` and ``rho``.
    rule : str
        The success criterion, shown in the title.
    """
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(cells.sort_values(["solver", "group"])["group"]))
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.8 * ncols + 1.4, 4.3 * nrows + 0.9), squeeze=False,
                                 layout="constrained")
        for ax, group in zip(axes.flat, groups):
            rows = cells[cells["group"] == group]
            mesh = plot_phase_diagram(rows, curves[curves["group"] == group], theory, ax)
            ax.set_title(f"{group_title(group, rows['solver'].iloc[0])}\n{_instance_note(rows)}")
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        fig.colorbar(mesh, ax=axes, shrink=0.9, label="empirical success probability (fraction of trials)")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=1 if ncols == 1 else 2, frameon=False)
        fig.suptitle(f"Phase diagram (success: {rule})" if rule else "Phase diagram")
    return fig


def transition_comparison_figure(curves: pd.DataFrame, theory: pd.DataFrame, rule: str = "") -> Figure:
    """The fitted 50% curves of every configuration on one axis (95% bands shaded) with the ℓ1 weak threshold."""
    import matplotlib.pyplot as plt

    styles = ("-", "--", "-.", ":")
    with style():
        fig, ax = plt.subplots(figsize=(6.8, 5.0), layout="constrained")
        ax.plot(theory["delta"], theory["rho"], color="black", lw=2.0, ls="--", label=THEORY_LABEL)
        seen: dict[str, int] = {}
        for group, rows in curves.groupby("group", sort=True):
            solver = rows["solver"].iloc[0]
            ls = styles[seen.get(solver, 0) % len(styles)]
            seen[solver] = seen.get(solver, 0) + 1
            fitted = rows.sort_values("delta_actual")  # NaN points break the line and the band
            color = solver_color(solver, curves["solver"].unique())
            ax.fill_between(fitted["delta_actual"], fitted["low"], fitted["high"], color=color, alpha=0.2, lw=0)
            ax.plot(fitted["delta_actual"], fitted["rho50"], marker="o", ms=3.5, ls=ls, lw=1.8, color=color,
                    label=f"{group_title(group, solver)}: 50% success")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(DELTA_LABEL)
        ax.set_ylabel(RHO_LABEL)
        # below the axes, as the phase diagram's and the selection map's: inside, ten curves' legend hid some of them
        fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
        title = ("Empirical 50% success curves (logistic fit, 95% band, or the\n"
                 "gap between two rows where success jumps from 100% to 0%)")
        ax.set_title(f"{title}\nsuccess: {rule}" if rule else title)
    return fig


def selection_map_figure(selection: pd.DataFrame, curves: pd.DataFrame, theory: pd.DataFrame,
                         rule: str = "", close_call: float = 1.2) -> Figure:
    """Algorithm-selection map: each cell coloured by the fastest configuration with success ≥ ½
    (`experiments.analysis.selection.selection_table`), close calls hatched, cells where none qualifies left
    grey; every configuration's 50% curve in its colour and the ℓ1 weak threshold on top."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    groups = sorted(set(curves["group"]) | set(selection["winner"].dropna()))
    solver_of = dict(zip(curves["group"], curves["solver"]))
    solver_of.update(dict(zip(selection["winner"].dropna(), selection["solver"].dropna())))
    # a solver run in two configurations (default and tuned steps) needs two colours: key those by group
    repeated = {s for s in solver_of.values() if list(solver_of.values()).count(s) > 1}
    key = {g: (g if solver_of[g] in repeated else solver_of[g]) for g in groups}
    palette = {g: solver_color(key[g], key.values()) for g in groups}
    index = {g: i for i, g in enumerate(groups)}
    # every (ρ, δ) of the grid, a δ column or ρ row without any winner included (pivot_table would drop it)
    rhos, deltas = np.sort(selection["rho"].unique()), np.sort(selection["delta"].unique())

    def cells(column: str) -> pd.DataFrame:
        return selection.groupby(["rho", "delta"])[column].first().unstack().reindex(index=rhos, columns=deltas)

    grid = cells("winner")
    codes = grid.apply(lambda column: column.map(index)).to_numpy(dtype=float)
    x_edges, y_edges = cell_edges(grid.columns.to_numpy()), cell_edges(grid.index.to_numpy())
    with style():
        fig, ax = plt.subplots(figsize=(7.6, 6.0), layout="constrained")
        ax.set_facecolor("#e6e6e6")
        ax.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(codes), shading="flat",
                      cmap=ListedColormap([palette[g] for g in groups]), vmin=-0.5, vmax=len(groups) - 0.5)
        close = cells("close_call")
        for i in range(len(rhos)):
            for j in range(len(deltas)):
                flagged = close.iloc[i, j]
                if pd.notna(flagged) and bool(flagged) and not np.isnan(codes[i, j]):
                    ax.add_patch(plt.Rectangle((x_edges[j], y_edges[i]), x_edges[j + 1] - x_edges[j],
                                               y_edges[i + 1] - y_edges[i], fill=False, hatch="///",
                                               edgecolor="white", lw=0))
        ax.plot(theory["delta"], theory["rho"], color="black", lw=2.0, ls="--", label=THEORY_LABEL)
        for group, rows in curves.groupby("group", sort=True):
            fitted = rows.sort_values("delta_actual")
            ax.plot(fitted["delta_actual"], fitted["rho50"], color=palette[group], lw=1.8, marker="o", ms=3,
                    path_effects=_OUTLINE, label=f"{group_title(group, solver_of[group])}: 50% success")
        handles, labels = ax.get_legend_handles_labels()
        winners = [g for g in groups if g in set(selection["winner"].dropna())]
        handles += [Patch(facecolor=palette[g], label=f"fastest: {group_title(g, solver_of[g])}") for g in winners]
        handles += [Patch(facecolor="#e6e6e6", label="no configuration with success ≥ 50%"),
                    Patch(facecolor="#999999", hatch="///", edgecolor="white",
                          label=f"close call: runner-up within {close_call:g}× the time")]
        fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=7.5, frameon=False)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(DELTA_LABEL)
        ax.set_ylabel(RHO_LABEL)
        ax.grid(False)
        title = "Algorithm selection: fastest configuration with success ≥ 50% (median solve time of successes)"
        ax.set_title(f"{title}\nsuccess: {rule}" if rule else title, fontsize=9.5)
    return fig
