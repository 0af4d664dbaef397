"""The pruning experiments through the real ``obsbench`` app and result store (torch extra)."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("torch")

from experiments.store.results import load  # noqa: E402


def test_prune_vit_through_the_app_stores_rows_and_draws_the_figures(cli):
    """Two seeds (a job each) in one sweep: one run per seed, and a report over both (mean ± sd)."""
    args = ("experiment=prune_vit", "experiment.methods=[magnitude,sparsegpt,sparsegpt_equal,iobs]",
            "experiment.sparsities=[0.5]", "experiment.rounds=[1,2]", "seed=0,1")
    done = cli(*args, timeout=600)
    assert done.returncode == 0, done.stderr
    frame = load(cli.results)
    assert frame["run_id"].nunique() == 2 and set(frame["seed"]) == {0, 1}
    assert set(frame["method"]) == {"dense", "magnitude", "sparsegpt", "sparsegpt_equal", "iobs"}
    out = next(cli.outputs.glob("multirun/*/*/summary.csv")).parent
    for name in ("metric_vs_sparsity.png", "metric_vs_sparsity_nll.png", "metric_vs_rounds_0.5.png",
                 "metric_vs_rounds_0.5_nll.png", "layer_errors_0.5.csv"):
        assert (out / name).stat().st_size > 500, name
    summary = pd.read_csv(out / "summary.csv")
    heldout = summary[(summary["split"] == "heldout") & (summary["metric"] == "accuracy")]
    # dense, magnitude, SparseGPT, SparseGPT (equal data), I-OBS after 1 and 2 rounds; every mean over 2 seeds
    assert len(heldout) == 6 and (heldout["seeds"] == 2).all()
    assert set(heldout["label"]) >= {"SparseGPT", "SparseGPT (equal data)", "I-OBS (2)", "dense"}
    again = cli(*args, timeout=600)
    assert again.returncode == 0 and "already stored" in again.stdout


def test_invalid_pruning_settings_are_one_line_errors(cli):
    done = cli("experiment=prune_vit", "experiment.methods=[pruneit]")
    assert done.returncode != 0 and "pruneit" in done.stderr and "\n" not in done.stderr.strip()
    assert cli.parquet_files() == []


def test_the_app_and_the_pruning_package_know_the_same_methods():
    pytest.importorskip("torch")
    from experiments.kinds.pruning import METHODS
    from pruning.experiments import METHODS as PACKAGE_METHODS

    assert METHODS == PACKAGE_METHODS
