"""Iterations and time to a tolerance against the restricted condition number, with the theory's trend."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from plots.style import solver_color, solver_label, style


def conditioning_figure(table: pd.DataFrame, tol: float) -> Figure:
    """Left: iterations to reach relative error ``tol`` against the restricted condition number κ_2k (median
    over seeds, markers; runs that never reach it are omitted), with the reference κ·log(1/tol) (IHT with
    step 1/L, up to a constant fitted to the IHT medians) and 1 (exact Newton on a quadratic). Right: time to
    the tolerance and final relative error."""
    import matplotlib.pyplot as plt

    with style():
        fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.3))
        medians = table.groupby(["solver", "requested"]).median(numeric_only=True).reset_index()
        for solver, rows in medians.groupby("solver", sort=True):
            color, label = solver_color(solver, medians["solver"].unique()), solver_label(solver)
            rows = rows.sort_values("restricted_condition_number")
            x = rows["restricted_condition_number"]
            left.plot(x, rows["iterations_to_tol"], "o-", color=color, label=label)
            middle.plot(x, rows["time_to_tol_s"], "o-", color=color, label=label)
            right.plot(x, rows["final_rel_error"].clip(lower=1e-17), "o-", color=color, label=label)
        grid = np.geomspace(table["restricted_condition_number"].min(), table["restricted_condition_number"].max(), 50)
        iht = medians[medians["solver"] == "iht"].dropna(subset=["iterations_to_tol"])
        if len(iht):
            scale = np.median(iht["iterations_to_tol"] / iht["restricted_condition_number"])
            left.plot(grid, scale * grid, "k--", lw=1, label=r"theory: IHT $\propto \kappa$ ($\approx\kappa\log(e_0/\epsilon)$)")
        left.plot(grid, np.ones_like(grid), "k:", lw=1, label="theory: exact Newton, 1 step")
        for ax, ylabel in ((left, f"iterations to rel. error ≤ {tol:g}"), (middle, f"time to rel. error ≤ {tol:g} (s)"),
                           (right, "final relative error")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(r"restricted condition number $\kappa_{2k}$ of $X^\top X$")
            ax.set_ylabel(ylabel)
        left.legend(fontsize=7.5)
        fig.suptitle("Conditioning: cost of reaching the tolerance (median over seeds)")
        fig.tight_layout()
    return fig
