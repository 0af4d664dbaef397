"""Figures of the I-OBS paper's §4.1: loss and distance curves (mean ± std over seeds), recovered digits."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from plots.convergence import per_iteration
from plots.style import solver_color, style

#: The paper's legend names (Figure 1: "k-IHT" and "topk-I-OBS").
PAPER_LABELS = {"iht": "k-IHT", "topk_iobs": "Topk-I-OBS"}


def mean_and_std(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean and standard deviation over runs of ``column`` at every step; stopped runs keep their final value."""
    wide = per_iteration(frame, column)
    return pd.DataFrame({"mean": wide.mean(axis=1), "std": wide.std(axis=1).fillna(0.0), "min": wide.min(axis=1),
                         "max": wide.max(axis=1)})


def _panel(ax, runs: pd.DataFrame, column: str, floor: float = 1e-16) -> None:
    for solver, rows in runs.groupby("solver", sort=True):
        stats = mean_and_std(rows, column)
        color = solver_color(solver, runs["solver"].unique())
        label = f"{PAPER_LABELS.get(solver, solver)} ({rows['run_id'].nunique()} runs)"
        ax.plot(stats.index, stats["mean"].clip(lower=floor), color=color, lw=1.8, label=label)
        # mean ± std, kept inside the range of the runs: on a log axis mean − std can fall below every run
        low = np.maximum(stats["mean"] - stats["std"], stats["min"]).clip(lower=floor)
        high = np.minimum(stats["mean"] + stats["std"], stats["max"]).clip(lower=floor)
        ax.fill_between(stats.index, low, high, color=color, alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("# of steps")


def paper_curves_figure(frame: pd.DataFrame, variant_labels: dict[str, str], caption: str = "") -> Figure:
    """One row per step convention: training loss (1/n)‖Xθ − y‖² and ‖θ − θ*‖₂ against the step, mean ± std."""
    import matplotlib.pyplot as plt

    frame = frame.assign(mse=frame["objective"] * 2.0 / frame["p_n"])
    variants = [v for v in variant_labels if v in set(frame["variant"])]
    with style():
        fig, axes = plt.subplots(len(variants), 2, figsize=(11, 3.6 * len(variants)), squeeze=False)
        for row, variant in zip(axes, variants):
            runs = frame[frame["variant"] == variant]
            _panel(row[0], runs, "mse")
            _panel(row[1], runs, "distance")
            row[0].set_ylabel(r"training loss $\frac{1}{n}\|X\theta - y\|_2^2$")
            row[1].set_ylabel(r"$\|\theta_t - \theta^\star\|_2$ (L2 distance to $\theta^\star$)")
            for ax in row:
                ax.set_title(variant_labels[variant])
                ax.legend(loc="best")
        if caption:
            fig.suptitle(caption, fontsize=10)
        fig.tight_layout()
    return fig


def digit_mosaic(images: dict[str, list], caption: str = "") -> Figure:
    """Rows: original and each method's recovery; columns: seeds. Pixel values clipped to [0, 255] as in the
    paper's Figure 1b; a missing recovery is left blank."""
    import matplotlib.pyplot as plt

    rows = ["original"] + sorted(k for k in images if k != "original")
    columns = len(images["original"])
    with style():
        fig, axes = plt.subplots(len(rows), columns, figsize=(1.5 * columns + 1.2, 1.6 * len(rows)), squeeze=False)
        for r, key in enumerate(rows):
            for c in range(columns):
                ax = axes[r][c]
                image = images[key][c] if c < len(images[key]) else None
                if image is not None:
                    ax.imshow(np.clip(image, 0.0, 255.0), cmap="gray", vmin=0.0, vmax=255.0)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
            axes[r][0].set_ylabel(PAPER_LABELS.get(key, key), fontsize=10)
        if caption:
            fig.suptitle(caption, fontsize=9)
        fig.tight_layout()
    return fig
