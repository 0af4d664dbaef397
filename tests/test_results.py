"""The result store: schema, stable ids, atomic writes, loading."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.store.results import IDENTITY_COLUMNS, PROVENANCE_COLUMNS, TRACE_COLUMNS, ResultStore, load, run_id, tidy_rows
from experiments.execution.runner import RunSpec, execute
from solvers.base import make_solver


def _spec(seed=0, k_star=3):
    problem = {"_target_": "problems.sensing.make_compressed_sensing", "name": "cs", "m": 30, "d": 60,
               "k_star": k_star}
    return RunSpec(experiment="convergence", problem=problem,
                   solver={"_target_": "solvers.pursuit.CoSaMP", "k": None}, seed=seed)


def test_run_id_is_stable_and_order_independent():
    a = run_id({"m": 1, "d": 2}, {"k": None}, 0)
    assert a == run_id({"d": 2, "m": 1}, {"k": None}, 0) and len(a) == 16
    assert a != run_id({"m": 1, "d": 2}, {"k": None}, 1)


def test_a_revised_solver_gets_new_run_ids_and_the_others_keep_theirs():
    """`Solver.revision` > 0 (a bug fix that changes results: the Lasso's, 2026-12-03) enters the run id, so a rerun
    does not reuse what the earlier code stored; every other solver's ids are the plain hash, as before."""
    from experiments.execution.runner import identity
    from solvers.base import REGISTRY

    problem = {"_target_": "problems.sensing.make_compressed_sensing", "m": 30, "d": 60, "k_star": 3}
    lasso = {"_target_": "solvers.convex.Lasso", "lam_ratio": 1e-3}
    iht = {"_target_": "solvers.hard_thresholding.IHT", "k": None}
    assert identity(lasso) == {**lasso, "revision": 1} and identity(iht) == iht
    assert RunSpec("compare", problem, lasso, 0).run_id != run_id(problem, lasso, 0)
    assert RunSpec("compare", problem, iht, 0).run_id == run_id(problem, iht, 0)
    assert identity({"_target_": "no.such.Solver"}) == {"_target_": "no.such.Solver"}  # build refuses it later
    assert {name for name, cls in REGISTRY.items() if cls.revision} == {"lasso"}


def test_rows_follow_the_schema(small_ls):
    result = make_solver("iht").run(small_ls)
    frame = tidy_rows(result.trace, run="abc", experiment="e", problem="p", solver="iht", seed=3,
                      problem_params=small_ls.params, solver_params={"k": None, "step_size": 0.5},
                      status=result.status, message=result.message)
    for column in (*IDENTITY_COLUMNS, *TRACE_COLUMNS, "status", "message", *PROVENANCE_COLUMNS):
        assert column in frame.columns
    assert {"p_n", "p_kappa", "s_k", "s_step_size"} <= set(frame.columns)
    assert len(frame) == len(result.trace) and (frame["run_id"] == "abc").all()


def test_execute_writes_one_file_and_a_rerun_reads_it_back(tmp_path):
    store = ResultStore(tmp_path)
    first = execute(_spec(), store)
    path = store.path(_spec().run_id)
    stamp = path.stat().st_mtime_ns
    again = execute(_spec(), store)
    assert path.stat().st_mtime_ns == stamp  # not recomputed, not rewritten
    pd.testing.assert_frame_equal(first, again)
    assert store.runs() == [_spec().run_id]


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    store = ResultStore(tmp_path)
    frame = pd.DataFrame({"run_id": ["r"], "iteration": [0]})

    class Boom(Exception):
        pass

    original = pd.DataFrame.to_parquet

    def failing(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Boom

    pd.DataFrame.to_parquet = failing
    try:
        with pytest.raises(Boom):
            store.write("r", frame)
    finally:
        pd.DataFrame.to_parquet = original
    assert list(tmp_path.iterdir()) == []
    store.write("r", frame)
    assert [p.name for p in tmp_path.iterdir()] == ["r.parquet"]


def test_load_concatenates_runs_and_ignores_others(tmp_path):
    store = ResultStore(tmp_path)
    ids = [execute(_spec(seed=s), store)["run_id"].iloc[0] for s in range(3)]
    (tmp_path / ".partial.tmp").write_bytes(b"garbage")
    everything = load(tmp_path)
    assert everything["run_id"].nunique() == 3
    assert load(tmp_path, ids[:2])["run_id"].nunique() == 2
    assert load(tmp_path / "missing").empty


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(tmp_path):
    import os
    import time

    store = ResultStore(tmp_path)
    execute(_spec(seed=0), store)
    (tmp_path / "solutions").mkdir(exist_ok=True)
    stale = [tmp_path / ".dead.abc.tmp", tmp_path / "solutions" / ".dead.def.tmp"]
    fresh = tmp_path / ".live.ghi.tmp"  # a concurrent writer's file: seconds old
    for path in (*stale, fresh):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    for path in stale:
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert store.remove_stale_temporaries() == 2
    assert not any(p.exists() for p in stale) and fresh.exists()
    assert len(store.runs()) == 1 and store.remove_stale_temporaries() == 0


def pruning_frame(run: str) -> pd.DataFrame:
    """Rows shaped like a stored pruning run (`experiments.kinds.pruning`): no torch needed to test the store."""
    rows = [dict(model="vit", method=method, sparsity=0.5, iterations=1, split="heldout", metric="accuracy",
                 value=value, layer="") for method, value in (("magnitude", 0.9), ("sparsegpt", 0.95))]
    rows.append(dict(model="vit", method="sparsegpt", sparsity=0.5, iterations=1, split="heldout",
                     metric="layer_error", value=0.1, layer="blocks.0.fc1"))
    return pd.DataFrame(rows).assign(run_id=run, experiment="prune_vit", table="pruning")


def test_collect_handles_a_pruning_only_root_and_a_mixed_root(tmp_path):
    from experiments.store.collect import collect
    from experiments.store.results import ResultStore, final_rows, split_tables, tidy_rows
    from problems import make_compressed_sensing
    from solvers import make_solver

    store = ResultStore(tmp_path / "pruning_only")
    store.write("p1", pruning_frame("p1"))
    paths = collect(store.root, tmp_path / "out1")
    summary = pd.read_csv(tmp_path / "out1" / "pruning_summary.csv")
    assert {p.name for p in paths} == {"pruning_summary.csv", "report.md"}
    assert len(summary) == 2 and set(summary["method"]) == {"magnitude", "sparsegpt"}  # layer rows left out
    assert "1 pruning runs" in (tmp_path / "out1" / "report.md").read_text()

    problem = make_compressed_sensing(m=30, d=60, k_star=3, seed=0)
    result = make_solver("iht").run(problem)
    store.write("s1", tidy_rows(result.trace, run="s1", experiment="convergence", problem=problem.name,
                                solver="iht", seed=0, problem_params=problem.params, solver_params={},
                                status=result.status, message=result.message))
    collect(store.root, tmp_path / "out2")
    report = (tmp_path / "out2" / "report.md").read_text()
    assert "1 solver runs" in report and "1 pruning runs" in report
    assert len(pd.read_csv(tmp_path / "out2" / "collected.csv")) == 1
    traces, pruning = split_tables(load(store.root))
    assert set(traces["run_id"]) == {"s1"} and set(pruning["run_id"]) == {"p1"}
    assert set(final_rows(load(store.root))["run_id"]) == {"s1"}
