"""The experiment entry point returns tidy rows, and the figure functions draw them."""

import pytest

torch = pytest.importorskip("torch")

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
                "iobs_update", "iobs_lr", "iobs_batch", "iobs_hessian", "iobs_inputs", "time_s"):
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
    assert list(table.index) == ["0.fc"] and {"magnitude", "sparsegpt", "I-OBS (3)"} <= set(table.columns)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        run_pruning("synthetic", methods=["topk"], sparsities=[0.5], progress=False,
                    task_options={"d_in": 8, "d_out": 4, "n_calibration": 64, "n_heldout": 64})
