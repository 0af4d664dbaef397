"""End to end through the real ``obsbench`` console script (subprocesses)."""

from __future__ import annotations

import pandas as pd

from experiments.store.results import load


def test_default_run_writes_results_figure_and_summary(cli):
    done = cli()
    assert done.returncode == 0, done.stderr
    files = cli.parquet_files()
    assert len(files) == 12  # IHT, CoSaMP, Topk-I-OBS, the Lasso x 3 seeds
    frame = load(cli.results)
    assert set(frame["solver"]) == {"iht", "cosamp", "topk_iobs", "lasso"}
    assert set(frame["problem"]) == {"regression_demo"}
    bounded = frame[frame["iteration"] > 0].groupby("solver")["bound"].apply(lambda b: b.notna().all())
    assert bounded[["iht", "cosamp", "topk_iobs"]].all()  # the theory is drawn for every iterative solver
    figures = list(cli.outputs.glob("multirun/*/*/convergence.png"))
    assert len(figures) == 1 and figures[0].stat().st_size > 10_000
    assert figures[0].with_suffix(".pdf").is_file()
    summary = pd.read_csv(figures[0].with_name("summary.csv"))
    assert set(summary["solver"]) == {"iht", "cosamp", "topk_iobs", "lasso"}
    assert "success_rate" in done.stdout and str(figures[0].name) in done.stdout


def test_sweep_writes_one_file_per_run_and_a_rerun_writes_nothing(cli):
    args = ("-m", "solver=iht,cosamp", "problem.k_star=3,5", "seed=0")
    assert cli(*args).returncode == 0
    files = cli.parquet_files()
    assert len(files) == 4
    stamps = {p: p.stat().st_mtime_ns for p in files}
    frame = load(cli.results)
    assert sorted(frame.groupby("run_id")["p_k_star"].first()) == [3, 3, 5, 5]
    again = cli(*args)
    assert again.returncode == 0 and "already stored" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in cli.parquet_files()} == stamps


def test_invalid_k_exits_nonzero_with_one_line_and_writes_nothing(cli):
    done = cli("solver=iht", "solver.k=0")
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "k=0" in done.stderr
    assert "Traceback" not in done.stderr and cli.parquet_files() == []


def test_unknown_solver_and_bad_problem_values_are_one_line_errors(cli):
    for args, word in ((("solver=nope",), "solver/nope"), (("problem.k_star=999",), "k_star=999"),
                       (("problem=cs_gaussian", "problem.matrix=cauchy"), "matrix='cauchy'"), (("problem.bogus=1",), "bogus")):
        done = cli(*args)
        assert done.returncode != 0, args
        assert done.stderr.strip().count("\n") == 0 and word in done.stderr, done.stderr
    assert cli.parquet_files() == []


def test_joblib_launcher_runs_jobs_in_parallel_workers(cli):
    done = cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "solver=cosamp", "seed=0,1")
    assert done.returncode == 0, done.stderr
    assert len(cli.parquet_files()) == 2
    assert "Joblib" in done.stdout
