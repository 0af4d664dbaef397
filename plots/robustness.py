"""Robustness maps: one heat map per solver over (SNR, design correlation ρ), and the winner map."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from plots.style import solver_color, solver_label, style

METRIC_TITLES = {
    "objective_gap": "median objective gap f(x)/f_best − 1 (exact best k-subset)",
    "support_f1": "median support F1 against supp(x*)",
    "rel_error": "median relative error ‖x − x*‖/‖x*‖",
}
#: Gaps below this are drawn as this (the exact best subset is found up to rounding).
GAP_FLOOR = 1e-6


def _short(value: float) -> str:
    """A gap or error for a cell: 0 below rounding (|v| < 1e-12: the best subset found), else 2 digits."""
    return "0" if abs(value) < 1e-12 else f"{value:.1e}"


def _grid(cell: pd.DataFrame, column: str) -> tuple[np.ndarray, list[float], list[float]]:
    """SNR (rows, high to low) × ρ (columns) array of ``column``."""
    wide = cell.pivot_table(index="snr_db", columns="rho", values=column, aggfunc="first")
    wide = wide.sort_index(ascending=False)
    return wide.to_numpy(dtype=float), list(wide.index), list(wide.columns)


def _axes_labels(ax, snrs: list[float], rhos: list[float]) -> None:
    ax.set_xticks(range(len(rhos)), [f"{r:g}" for r in rhos])
    ax.set_yticks(range(len(snrs)), [f"{s:g}" for s in snrs])
    ax.set_xlabel("design correlation ρ (Toeplitz)")
    ax.set_ylabel("SNR (dB)")
    ax.grid(False)


def heat_maps_figure(table: pd.DataFrame, metric: str) -> Figure:
    """One panel per solver: the per-cell median of ``metric``, annotated, on a shared colour scale (log for
    the gap and the error, linear 0–1 for F1)."""
    import matplotlib.pyplot as plt

    solvers = sorted(table["solver"].unique())
    column = f"{metric}_median"
    values = table[column].to_numpy(dtype=float)
    if metric == "support_f1":
        norm, cmap = Normalize(0.0, 1.0), "viridis"
    else:
        finite = values[np.isfinite(values)]
        high = max(float(finite.max()) if finite.size else 1.0, GAP_FLOOR * 10)
        norm, cmap = LogNorm(GAP_FLOOR, high), "magma_r"
    columns = min(4, len(solvers))
    rows = -(-len(solvers) // columns)
    with style():
        fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.9 * rows + 0.6), squeeze=False)
        image = None
        for ax, solver in zip(axes.flat, solvers):
            grid, snrs, rhos = _grid(table[table["solver"] == solver], column)
            shown = grid if metric == "support_f1" else np.clip(grid, GAP_FLOOR, None)
            image = ax.imshow(shown, norm=norm, cmap=cmap, aspect="auto")
            for (i, j), value in np.ndenumerate(grid):
                text = "—" if not np.isfinite(value) else (f"{value:.2f}" if metric == "support_f1" else _short(value))
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if metric != "support_f1" and value > np.sqrt(GAP_FLOOR * norm.vmax) else "black")
            ax.set_title(solver_label(solver), color=solver_color(solver, solvers), fontsize=10)
            _axes_labels(ax, snrs, rhos)
        for ax in list(axes.flat)[len(solvers):]:
            ax.set_visible(False)
        fig.suptitle(METRIC_TITLES.get(metric, metric))
        fig.tight_layout(rect=(0, 0, 0.92, 1))
        if image is not None:
            fig.colorbar(image, ax=axes, fraction=0.025, pad=0.02)
    return fig


def winner_map_figure(winners: pd.DataFrame, excluded: tuple[str, ...] = ()) -> Figure:
    """Per cell, the solver with the lowest median objective gap (its colour and name); tied cells are grey
    and list the tied solvers. ``excluded`` solvers (named in the title) did not compete."""
    import matplotlib.pyplot as plt

    everyone = {name for cell in winners["winners"] for name in cell.split(" = ")}
    snrs = sorted(winners["snr_db"].unique(), reverse=True)
    rhos = sorted(winners["rho"].unique())
    with style():
        fig, ax = plt.subplots(figsize=(1.9 * len(rhos) + 1.5, 1.0 * len(snrs) + 1.2))
        for _, row in winners.iterrows():
            i, j = snrs.index(row["snr_db"]), rhos.index(row["rho"])
            names = row["winners"].split(" = ")
            color = solver_color(names[0], everyone) if len(names) == 1 else "0.85"
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color=color, alpha=0.55 if len(names) == 1 else 1.0))
            head = "" if len(names) == 1 else f"{len(names)}-way tie:\n"
            label = head + "\n".join(solver_label(n) for n in names[:4]) + ("\n…" if len(names) > 4 else "")
            ax.text(j, i, f"{label}\ngap {_short(row['best_gap'])}", ha="center", va="center", fontsize=6.5)
        ax.set_xlim(-0.5, len(rhos) - 0.5)
        ax.set_ylim(len(snrs) - 0.5, -0.5)
        _axes_labels(ax, snrs, rhos)
        title = "winner: lowest median objective gap to the best k-subset (grey: tie)"
        if excluded:
            title += "\nnot competing: " + ", ".join(solver_label(n) for n in excluded)
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
    return fig
