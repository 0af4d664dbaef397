"""Pure plotting functions for `pruning.experiments.run_pruning` results: ``DataFrame → Figure`` (or table).
They never run a pruner. Rows of several seeds (one run per seed) are aggregated: every number is the mean over
seeds and every error bar one standard deviation, so a difference smaller than the bars is not a finding.

* `seed_summary`: mean, standard deviation and seed count per (method, sparsity, rounds, split, metric);
* `metric_vs_sparsity`: one line per method (and per I-OBS round count) of a metric against sparsity;
* `metric_vs_iterations`: I-OBS metric against the number of rounds on calibration vs held-out data (the
  paper's overfitting curve, §5.2–5.3), with dense, one-shot SparseGPT and equal-data SparseGPT as references;
* `layer_error_table`: held-out per-layer reconstruction error (mean over seeds), layers × methods.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

#: the headline metric of each model of `pruning.experiments.run_pruning`
HEADLINE = {"vit": "accuracy", "smollm2": "ppl", "minilm": "cosine", "synthetic": "rel_error"}
#: Display names (the same in every table and figure; `pruning.experiments.LABELS` without importing torch).
LABELS = {"magnitude": "magnitude", "wanda": "Wanda", "sparsegpt": "SparseGPT", "obs": "exact OBS",
          "wanda_equal": "Wanda (equal data)", "sparsegpt_equal": "SparseGPT (equal data)", "dense": "dense"}
KEYS = ["method", "sparsity", "iterations", "split", "metric"]


def label(method: str, iterations: int) -> str:
    """``"I-OBS (3)"`` for iterated I-OBS after 3 rounds, the display name otherwise."""
    return f"I-OBS ({iterations})" if method == "iobs" else LABELS.get(method, method)


def seed_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Model-level metrics aggregated over seeds: ``mean``, ``std`` (0 for one seed) and ``seeds``, with the
    display ``label`` of each (method, rounds)."""
    rows = df[df["layer"] == ""]
    table = rows.groupby(KEYS, sort=True)["value"].agg(mean="mean", std="std", seeds="count").reset_index()
    table["std"] = table["std"].fillna(0.0)
    return table.assign(label=[label(m, i) for m, i in zip(table["method"], table["iterations"])])


def _model_rows(df: pd.DataFrame, metric: str, split: str) -> pd.DataFrame:
    summary = seed_summary(df)
    return summary[(summary["metric"] == metric) & (summary["split"] == split)]


def _seeds_note(df: pd.DataFrame) -> str:
    seeds = df["seed"].nunique() if "seed" in df else 1
    return f"mean ± sd over {seeds} seeds" if seeds > 1 else "one seed"


def metric_vs_sparsity(df: pd.DataFrame, metric: str, split: str = "heldout", ax: plt.Axes | None = None,
                       iterations: list[int] | None = None) -> Figure:
    """``metric`` on ``split`` against sparsity, one line per method (mean ± sd over seeds); I-OBS once per
    round count in ``iterations`` (default: its largest). The dense model is a dashed horizontal line."""
    rows = _model_rows(df, metric, split)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.6, 3.9))
    iob = rows[rows["method"] == "iobs"]
    keep = iterations or ([int(iob["iterations"].max())] if len(iob) else [])
    for (method, it), g in rows[rows["method"] != "dense"].groupby(["method", "iterations"]):
        if method == "iobs" and it not in keep:
            continue
        g = g.sort_values("sparsity")
        ax.errorbar(g["sparsity"], g["mean"], yerr=g["std"], marker="o", ms=4, capsize=3,
                    ls="--" if method.endswith("_equal") else "-", label=label(method, it))
    dense = rows[rows["method"] == "dense"]["mean"]
    if len(dense):
        ax.axhline(float(dense.iloc[0]), color="k", ls="--", lw=1, label="dense")
    ax.set(xlabel="sparsity", ylabel=f"{metric} ({split})",
           title=f"{df['model'].iloc[0]}: {metric} vs sparsity ({_seeds_note(df)})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def metric_vs_iterations(df: pd.DataFrame, metric: str, sparsity: float, ax: plt.Axes | None = None) -> Figure:
    """I-OBS ``metric`` against the number of rounds at ``sparsity``, on calibration and held-out data
    (mean ± sd over seeds), with one-shot SparseGPT (× at round 1), SparseGPT given the data of all rounds
    (dotted line: the equal-data reference) and the dense model (dashed)."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.6, 3.9))
    for split, style in (("calibration", "s-"), ("heldout", "o-")):
        rows = _model_rows(df, metric, split)
        at = rows[rows["sparsity"] == sparsity]
        iob = at[at["method"] == "iobs"].sort_values("iterations")
        line = ax.errorbar(iob["iterations"], iob["mean"], yerr=iob["std"], fmt=style, capsize=3,
                           label=f"I-OBS, {split}").lines[0]
        color = line.get_color()
        dense = rows[rows["method"] == "dense"]["mean"]
        if len(dense):
            ax.axhline(float(dense.iloc[0]), color=color, ls="--", lw=1, label=f"dense, {split}")
        sgpt = at[at["method"] == "sparsegpt"]
        if len(sgpt):
            ax.errorbar([1], sgpt["mean"], yerr=sgpt["std"], fmt="x", ms=9, color=color, capsize=3,
                        label=f"SparseGPT, {split}")
        equal = at[at["method"] == "sparsegpt_equal"]
        if len(equal):
            ax.axhline(float(equal["mean"].iloc[0]), color=color, ls=":", lw=1.5,
                       label=f"SparseGPT with all rounds' data, {split}")
    ax.set(xlabel="I-OBS rounds", ylabel=metric,
           title=f"{df['model'].iloc[0]}: {metric} at sparsity {sparsity:g} ({_seeds_note(df)})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=6.5)
    fig.tight_layout()
    return fig


def layer_error_table(df: pd.DataFrame, sparsity: float) -> pd.DataFrame:
    """Held-out relative reconstruction error per layer (rows) and method (columns) at ``sparsity``, mean over
    seeds; I-OBS columns are labelled with their round count."""
    rows = df[(df["metric"] == "layer_error") & (df["sparsity"] == sparsity) & (df["method"] != "dense")]
    rows = rows.assign(column=[label(m, i) for m, i in zip(rows["method"], rows["iterations"])])
    return rows.pivot_table(index="layer", columns="column", values="value", aggfunc="mean", sort=False)
