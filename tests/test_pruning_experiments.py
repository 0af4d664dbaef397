"""The experiment entry point returns tidy rows, and the figure functions draw them."""

import pytest

torch = pytest.importorskip("torch")

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pruning.experiments import run_pruning  # noqa: E402
from pruning.figures import layer_error_table, metric_vs_iterations, metric_vs_sparsity  # noqa: E402
from pruning.iobs import IOBSConfig  # noqa: E402


@pytest.fixture(scope="module")
def rows():
    return run_pruning("synthetic", methods=["magnitude", "sparsegpt", "iobs"], sparsities=[0.5, 0.7],
                       iobs_rounds=[1, 3], iobs=IOBSConfig(batch="fixed", update="task", lr=0.01,
                                                           hessian="fresh"),
                       task_options={"d_in": 32, "d_out": 16, "n_calibration": 512, "n_heldout": 512},
                       progress=False)


def test_rows_schema(rows):
    for col in ("model", "method", "sparsity", "pattern", "iterations", "split", "metric", "value", "layer",
                "iobs_update", "iobs_lr", "iobs_batch", "iobs_hessian", "iobs_inputs", "time_s",
                "calibration_items_per_round", "calibration_tokens_per_round"):
        assert col in rows.columns
    model = rows[rows["layer"] == ""]
    got = set(zip(model["method"], model["sparsity"], model["iterations"]))
    assert ("dense", 0.0, 0) in got and ("iobs", 0.7, 3) in got and ("iobs", 0.7, 2) not in got
    assert set(rows["split"]) == {"heldout", "calibration"}
    assert (rows[rows["metric"] == "layer_error"]["layer"] == "0.fc").all()


def test_round_one_of_iobs_is_sparsegpt(rows):
    model = rows[(rows["layer"] == "") & (rows["split"] == "heldout")]
    one = model[(model["method"] == "iobs") & (model["iterations"] == 1)].set_index("sparsity")["value"]
    sgpt = model[model["method"] == "sparsegpt"].set_index("sparsity")["value"]
    assert one.to_dict() == pytest.approx(sgpt.to_dict())


def test_nm_rows():
    df = run_pruning("synthetic", methods=["wanda"], nm=(2, 4), layer_errors=False, progress=False,
                     task_options={"d_in": 16, "d_out": 8, "n_calibration": 256, "n_heldout": 256})
    assert set(df[df["method"] == "wanda"]["pattern"]) == {"2:4"}


def test_figures(rows):
    assert isinstance(metric_vs_sparsity(rows, "rel_error"), Figure)
    assert isinstance(metric_vs_iterations(rows, "rel_error", 0.7), Figure)
    table = layer_error_table(rows, 0.7)
    assert list(table.index) == ["0.fc"] and {"magnitude", "SparseGPT", "I-OBS (3)"} <= set(table.columns)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        run_pruning("synthetic", methods=["topk"], sparsities=[0.5], progress=False,
                    task_options={"d_in": 8, "d_out": 4, "n_calibration": 64, "n_heldout": 64})


SMALL = {"d_in": 16, "d_out": 8, "n_calibration": 512, "n_heldout": 256}


def test_the_equal_data_baseline_sees_the_data_of_every_round():
    """SparseGPT (equal data) calibrates once on I-OBS(T)'s T fresh batches: with T = 1 it is SparseGPT, with
    T = 3 it differs from one-shot SparseGPT (more data) and equals SparseGPT run on the union by hand."""
    from pruning.engine import PruneSpec
    from pruning.experiments import build_task
    from pruning.iobs import IteratedOBS

    def heldout(df, method):
        rows = df[(df["layer"] == "") & (df["split"] == "heldout") & (df["method"] == method)]
        return rows.set_index("metric")["value"].to_dict()

    one = run_pruning("synthetic", methods=["sparsegpt", "sparsegpt_equal"], sparsities=[0.5], iobs_rounds=[1],
                      task_options=SMALL, progress=False, layer_errors=False)
    assert heldout(one, "sparsegpt_equal") == heldout(one, "sparsegpt")
    three = run_pruning("synthetic", methods=["sparsegpt", "sparsegpt_equal", "wanda_equal"], sparsities=[0.5],
                        iobs_rounds=[1, 3], task_options=SMALL, progress=False, layer_errors=False)
    assert heldout(three, "sparsegpt_equal") != heldout(three, "sparsegpt")
    task = build_task("synthetic", 0, "cpu", dict(SMALL))
    IteratedOBS(PruneSpec(sparsity=0.5, method="sparsegpt"), IOBSConfig(rounds=1, first_batches=3),
                progress=False).run(task)
    assert task.evaluate("heldout", None) == pytest.approx(heldout(three, "sparsegpt_equal"), rel=1e-12)


def test_tables_and_figures_aggregate_seeds():
    from pruning.figures import seed_summary

    frames = [run_pruning("synthetic", methods=["sparsegpt"], sparsities=[0.5], iobs_rounds=[1], seed=seed,
                          task_options=SMALL, progress=False, layer_errors=False) for seed in (0, 1, 2)]
    rows = pd.concat(frames, ignore_index=True)
    summary = seed_summary(rows)
    one = summary[(summary["method"] == "sparsegpt") & (summary["split"] == "heldout")].iloc[0]
    values = rows[(rows["method"] == "sparsegpt") & (rows["split"] == "heldout")
                  & (rows["metric"] == one["metric"])]["value"]
    assert one["seeds"] == 3 and one["mean"] == pytest.approx(values.mean()) and one["std"] == pytest.approx(
        values.std()) and one["std"] > 0 and one["label"] == "SparseGPT"
    assert isinstance(metric_vs_sparsity(rows, one["metric"]), Figure)
