"""Issue #20 without a cluster: a sweep launches only the points that are not stored (basic and joblib
launchers), an `interrupted` record is recomputed, a failed job is one line (never a traceback) and the sweep
still reports; with submitit's local executor a job cut off by its time limit is recorded as `interrupted` and
the rerun computes it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments.store.results import ResultStore, load
from problems.regression import make_least_squares
from tests.faulty_solvers import Hanging

REPO = Path(__file__).resolve().parents[1]
FAULT_CONF = f"hydra.searchpath=[file://{REPO / 'tests' / 'fault_conf'}]"


def flaky_least_squares(*, seed: int, **params):
    """A problem whose job fails (an exception outside any solve, like a lost file system) for seed 1."""
    if seed == 1:
        raise RuntimeError("results file system went away")
    return make_least_squares(seed=seed, **params)


class HangsWhenAsked(Hanging):
    """Sleeps (inside one call) only where ``OBSBENCH_TEST_HANG`` asks: ``all``, or a comma-separated list of the
    seeds that hang; else returns at once."""

    name = "hangs_when_asked"

    def run(self, problem, callbacks=()):
        hang = os.environ.get("OBSBENCH_TEST_HANG", "")
        if not (hang == "all" or str(problem.seed) in hang.split(",")):
            self.seconds = 0.0
        return super().run(problem, callbacks)


def _sweep_summary(stdout: str, outputs: Path) -> pd.DataFrame:
    latest = sorted(outputs.glob("multirun/*/*/summary.csv"), key=lambda p: p.stat().st_mtime)[-1]
    return pd.read_csv(latest)


# the joblib variant (~20 s, worker start-up) runs in `make test-all`
@pytest.mark.parametrize("launcher", ["basic", pytest.param("joblib", marks=pytest.mark.slow)])
def test_rerun_launches_only_what_is_missing(cli, launcher):
    extra = [] if launcher == "basic" else ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    first = cli("-m", *extra, "solver=iht,cosamp", "seed=0,1")
    assert first.returncode == 0, first.stderr
    assert len(cli.parquet_files()) == 4

    again = cli("-m", *extra, "solver=iht,cosamp", "seed=0,1")  # a finished sweep: nothing is launched
    assert again.returncode == 0, again.stderr
    assert "all 4 sweep points already stored" in again.stdout and "launching" not in again.stdout.lower()
    assert "already stored, skipping" not in again.stdout  # no job was started at all
    summary = _sweep_summary(again.stdout, cli.outputs)  # ...and the report still covers the whole sweep
    assert summary["runs"].sum() == 4

    more = cli("-m", *extra, "solver=iht,cosamp", "seed=0,1,2")
    assert more.returncode == 0, more.stderr
    assert "skipping 4 of 6 sweep points: all their runs already stored" in more.stdout
    assert "launching 2" in more.stdout and more.stdout.count("already stored, skipping") == 0
    assert _sweep_summary(more.stdout, cli.outputs)["runs"].sum() == 6


def test_an_interrupted_record_is_recomputed_by_the_rerun(cli):
    assert cli("-m", "solver=iht", "seed=0,1").returncode == 0
    store = ResultStore(cli.results)
    victim = cli.parquet_files()[0].stem
    rows = store.read(victim).assign(status="interrupted", message="ended by the scheduler: SIGTERM")
    store.write(victim, rows)
    assert not store.has(victim) and store.exists(victim)

    again = cli("-m", "solver=iht", "seed=0,1")
    assert again.returncode == 0, again.stderr
    assert "skipping 1 of 2 sweep points" in again.stdout and "Launching 1 jobs" in again.stdout
    assert set(store.read(victim)["status"]) == {"ok"} and store.has(victim)


def test_a_failed_job_is_one_line_and_the_sweep_still_reports(cli):
    done = cli("-m", "problem=least_squares", "problem._target_=tests.test_sweep_resume.flaky_least_squares",
               "solver=iht", "seed=0,1,2", PYTHONPATH=str(REPO))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout.count("did not finish") == 1 and "results file system went away" in done.stdout
    assert done.stderr.strip().splitlines()[-1].startswith("obsbench: error: 1 job(s) of the sweep did not finish")
    assert _sweep_summary(done.stdout, cli.outputs)["runs"].sum() == 2  # the report ran over the finished jobs


@pytest.mark.slow
def test_submitit_time_limit_is_interrupted_then_recomputed(cli):
    """submitit's local executor sends SIGUSR2 30 s before ``timeout_min``, like SLURM's ``--signal``."""
    args = ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=1", "+hydra.launcher.max_num_timeout=0",
            FAULT_CONF, "problem=least_squares", "solver=fault_hanging", "solver.time_budget=null",
            "solver._target_=tests.test_sweep_resume.HangsWhenAsked", "seed=0,1"]
    tic = time.monotonic()
    cut = cli(*args, PYTHONPATH=str(REPO), OBSBENCH_TEST_HANG="all", timeout=240)
    assert cut.returncode == 1 and "Traceback" not in cut.stderr + cut.stdout
    assert cut.stdout.count("ended by the scheduler (time limit)") == 2
    assert time.monotonic() - tic < 120
    stored = load(cli.results)
    assert set(stored["status"]) == {"interrupted"} and stored["run_id"].nunique() == 2
    assert not any(ResultStore(cli.results).has(r) for r in stored["run_id"].unique())

    again = cli(*args, PYTHONPATH=str(REPO), timeout=240)  # the rerun recomputes both
    assert again.returncode == 0, again.stderr
    assert "skipping" not in again.stdout
    final = load(cli.results)
    assert final["run_id"].nunique() == 2 and "interrupted" not in set(final["status"])


def test_hydras_legality_check_is_skipped_only_behind_the_validating_callback():
    """The sweeper leaves out Hydra's composition of every point (`validate_batch_is_legal`) only when the
    `ValidateSweep` callback has composed and checked them before the sweep; with the callbacks overridden
    away, Hydra's check stays."""
    from omegaconf import OmegaConf

    from hydra_plugins.obsbench_plugins.sweeper import VALIDATOR, validated_by_callback

    shipped = OmegaConf.load(REPO / "conf" / "config.yaml")
    assert validated_by_callback(shipped)
    assert VALIDATOR in {str(c["_target_"]) for c in shipped.hydra.callbacks.values()}
    assert not validated_by_callback(OmegaConf.create({"hydra": {"callbacks": {}}}))
    assert not validated_by_callback(OmegaConf.create({"hydra": {"callbacks": {"report": {
        "_target_": "experiments.app.callbacks.SweepReport"}}}}))
