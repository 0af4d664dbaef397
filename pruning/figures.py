"""Pure plotting functions for `pruning.experiments.run_pruning` results: ``DataFrame → Figure`` (or table).
They never run a pruner.

* `metric_vs_sparsity`: one line per method (and per I-OBS round count) of a metric against sparsity;
* `metric_vs_iterations`: I-OBS metric against the number of rounds on calibration vs held-out data (the
  paper's overfitting curve, §5.2–5.3), with the dense and one-shot SparseGPT levels as references;
* `layer_error_table`: held-out per-layer reconstruction error, layers × methods.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

#: the headline metric of each model of `pruning.experiments.run_pruning`
HEADLINE = {"vit": "accuracy", "smollm2": "ppl", "minilm": "cosine", "synthetic": "rel_error"}


def _model_rows(df: pd.DataFrame, metric: str, split: str) -> pd.DataFrame:
    return df[(df["layer"] == "") & (df["metric"] == metric) & (df["split"] == split)]


def _label(method: str, iterations: int) -> str:
    return f"I-OBS ({iterations})" if method == "iobs" else method


def metric_vs_sparsity(df: pd.DataFrame, metric: str, split: str = "heldout", ax: plt.Axes | None = None,
                       iterations: list[int] | None = None) -> Figure:
    """``metric`` on ``split`` against sparsity, one line per method; I-OBS once per round count in
    ``iterations`` (default: its largest). The dense model is a dashed horizontal line."""
    rows = _model_rows(df, metric, split)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.5))
    iob = rows[rows["method"] == "iobs"]
    keep = iterations or ([int(iob["iterations"].max())] if len(iob) else [])
    for (method, it), g in rows[rows["method"] != "dense"].groupby(["method", "iterations"]):
        if method == "iobs" and it not in keep:
            continue
        g = g.sort_values("sparsity")
        ax.plot(g["sparsity"], g["value"], marker="o", label=_label(method, it))
    dense = rows[rows["method"] == "dense"]["value"]
    if len(dense):
        ax.axhline(float(dense.iloc[0]), color="k", ls="--", lw=1, label="dense")
    ax.set(xlabel="sparsity", ylabel=f"{metric} ({split})", title=f"{df['model'].iloc[0]}: {metric} vs sparsity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_vs_iterations(df: pd.DataFrame, metric: str, sparsity: float, ax: plt.Axes | None = None) -> Figure:
    """I-OBS ``metric`` against the number of rounds at ``sparsity``, on calibration and held-out data,
    with one-shot SparseGPT (markers at round 1) and the dense model (dashed) for reference."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 3.5))
    for split, style in (("calibration", "s-"), ("heldout", "o-")):
        rows = _model_rows(df, metric, split)
        iob = rows[(rows["method"] == "iobs") & (rows["sparsity"] == sparsity)].sort_values("iterations")
        line, = ax.plot(iob["iterations"], iob["value"], style, label=f"I-OBS, {split}")
        dense = rows[rows["method"] == "dense"]["value"]
        if len(dense):
            ax.axhline(float(dense.iloc[0]), color=line.get_color(), ls="--", lw=1, label=f"dense, {split}")
        sgpt = rows[(rows["method"] == "sparsegpt") & (rows["sparsity"] == sparsity)]["value"]
        if len(sgpt):
            ax.plot([1], [float(sgpt.iloc[0])], "x", ms=9, color=line.get_color(), label=f"SparseGPT, {split}")
    ax.set(xlabel="I-OBS rounds", ylabel=metric, title=f"{df['model'].iloc[0]}: {metric} at sparsity {sparsity:g}")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def layer_error_table(df: pd.DataFrame, sparsity: float) -> pd.DataFrame:
    """Held-out relative reconstruction error per layer (rows) and method (columns) at ``sparsity``; I-OBS
    columns are labelled with their round count."""
    rows = df[(df["metric"] == "layer_error") & (df["sparsity"] == sparsity) & (df["method"] != "dense")]
    rows = rows.assign(column=[_label(m, i) for m, i in zip(rows["method"], rows["iterations"])])
    return rows.pivot_table(index="layer", columns="column", values="value", sort=False)
