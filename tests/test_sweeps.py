"""Sweeps at scale: launcher presets, the collector, and comparing a user's own solver."""

from __future__ import annotations

import pandas as pd

from experiments.store.collect import collect, markdown_table
from experiments.store.results import load
from tests.conftest import write_user_solver


def test_submitit_local_launcher_runs_the_sweep(cli):
    done = cli("-m", "hydra/launcher=submitit_local", "solver=cosamp", "seed=0,1", timeout=240)
    assert done.returncode == 0, done.stderr
    assert len(cli.parquet_files()) == 2


def test_slurm_preset_composes_with_cluster_settings(cli):
    done = cli("hydra/launcher=slurm", "hydra.launcher.partition=cpu", "--cfg", "hydra")
    assert done.returncode == 0, done.stderr
    for line in ("partition: cpu", "cpus_per_task: 1", "timeout_min: 60", "SlurmLauncher"):
        assert line in done.stdout


def test_collect_writes_table_csv_and_markdown(cli, tmp_path):
    assert cli("-m", "solver=iht,cosamp", "seed=0,1").returncode == 0
    paths = collect(cli.results, tmp_path / "report")
    collected, summary, report = paths
    assert len(load(cli.results)["run_id"].unique()) == 4
    assert collected.read_text().count("\n") == 5  # header + one final row per run
    assert "| convergence | regression_demo | cosamp |" in report.read_text()
    assert markdown_table(load(cli.results).head(1)[["solver", "seed"]]).startswith("| solver | seed |")


def test_a_user_solver_outside_the_package_is_compared_with_the_baselines(cli):
    write_user_solver(cli.root, "HalfStepIHT", "half_step_iht", extra='''
        # the user's own theorem, registered from the user's module: drawn without editing the package
        from solvers.bounds import Theorem, register_theorems
        register_theorems(HalfStepIHT, Theorem("a user's rate", lambda solver, problem, e: (2.0 * e, "")))
    ''')
    done = cli("-m", "experiment=compare", f"hydra.searchpath=[file://{cli.root / 'my_conf'}]",
               "solver=half_step_iht,iht,cosamp,topk_iobs,bp", "experiment.parts.convergence.seeds=2",
               "experiment.parts.phase_transition.deltas=2", "experiment.parts.phase_transition.rhos=2",
               "experiment.parts.phase_transition.trials=2", "experiment.parts.scaling.dims=[32,64]",
               PYTHONPATH=str(cli.root), timeout=300)
    assert done.returncode == 0, done.stderr
    frame = load(cli.results)
    solvers = {"half_step_iht", "iht", "cosamp", "topk_iobs", "basis_pursuit"}
    assert set(frame["solver"]) == solvers
    assert set(frame["experiment"]) == {"compare_convergence", "compare_phase_transition", "compare_scaling"}
    user_rows = frame[(frame["solver"] == "half_step_iht") & (frame["experiment"] == "compare_convergence")
                      & (frame["iteration"] > 0)]
    assert len(user_rows) and user_rows["bound"].notna().all() and (user_rows["bound_note"] == "").all()
    sweep = next(cli.outputs.glob("multirun/*/*/ranking.csv")).parent
    ranking = pd.read_csv(sweep / "ranking.csv")
    assert set(ranking["solver"]) == solvers and list(ranking["rank"]) == [1, 2, 3, 4, 5]
    assert ranking["errors"].sum() == 0
    for figure in ("convergence/convergence.png", "phase_transition/phase_comparison.png", "scaling/scaling.png"):
        assert (sweep / figure).stat().st_size > 10_000, figure
