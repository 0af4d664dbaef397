"""Integration test against a real single-node SLURM (issue #20): `make test-slurm`, as root, starts one with
tests/slurm/start_slurm.sh. A small sweep goes through the `hydra/launcher=slurm` preset; one task is cancelled
(scancel) while it runs, one hits its time limit; the submitter reports each in one line, and the store holds
exactly the expected runs with truthful statuses; the rerun computes only those two, the next rerun nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.store.results import ResultStore, load, final_rows

REPO = Path(__file__).resolve().parents[1]
START = REPO / "tests" / "slurm" / "start_slurm.sh"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("sbatch") is None, reason="no SLURM client (sbatch) on this machine")]


@pytest.fixture(scope="module")
def slurm_env() -> dict[str, str]:
    """The environment of a working SLURM: the throwaway cluster (started here when running as root), or the
    one ``SLURM_CONF`` / the machine already points at, provided it has a partition ``cpu``."""
    env = dict(os.environ)
    if os.geteuid() == 0 and "SLURM_CONF" not in env:
        started = subprocess.run([str(START)], capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            pytest.skip(f"could not start the throwaway SLURM: {started.stderr.strip().splitlines()[-1:]}")
        env["SLURM_CONF"] = started.stdout.strip().split("=", 1)[1]
    partitions = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, env=env, timeout=30)
    if partitions.returncode != 0 or "cpu" not in partitions.stdout.split():
        pytest.skip("no SLURM cluster with a partition 'cpu' answers here (run `make test-slurm` as root)")
    return env


def _task_state(env: dict[str, str], task: str) -> str:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True, env=env).stdout
    return dict(line.split() for line in out.splitlines() if line.strip()).get(task, "")


def test_cancelled_and_timed_out_tasks_are_recomputed_by_the_rerun(slurm_env, tmp_path):
    env = {**slurm_env, "OBSBENCH_RESULTS": str(tmp_path / "results"), "OBSBENCH_OUTPUTS": str(tmp_path / "outputs"),
           "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "OBSBENCH_POLL_S": "1", "OBSBENCH_LOST_AFTER_S": "15"}
    env.pop("HYDRA_FULL_ERROR", None)
    command = [str(Path(sys.executable).with_name("obsbench")), "-m", "hydra/launcher=slurm",
               "hydra.launcher.partition=cpu", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=3",
               # SIGUSR2 80 s after the start, or up to 60 s earlier (SLURM's resolution): never before 20 s, when
               # the quick tasks are done
               "hydra.launcher.signal_delay_s=100",
               f"hydra.searchpath=[file://{REPO / 'tests' / 'fault_conf'}]", "problem=least_squares",
               "solver=fault_hanging", "solver._target_=tests.test_sweep_resume.HangsWhenAsked",
               "solver.time_budget=null", "solver.seconds=600", "seed=0,1,2,3"]

    # seeds 1 and 2 hang: 1 is cancelled while it runs, 2 runs into its time limit
    submitter = subprocess.Popen(command, cwd=tmp_path, env={**env, "OBSBENCH_TEST_HANG": "1,2"},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    array = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and submitter.poll() is None:
        logs = sorted((tmp_path / "outputs").glob("multirun/*/*/.submitit/*_1"))
        if logs:
            array = logs[0].name.split("_")[0]
            if _task_state(env, f"{array}_1") == "RUNNING":
                time.sleep(3)  # let the job reach its solve
                subprocess.run(["scancel", f"{array}_1"], env=env, check=True)
                break
        time.sleep(0.5)
    assert array is not None, "the job array never started"
    stdout, stderr = submitter.communicate(timeout=300)

    assert submitter.returncode == 1, stderr
    assert "Traceback" not in stdout + stderr
    failed = [line for line in stdout.splitlines() if "did not finish" in line]
    assert len(failed) == 2, stdout
    assert any("seed=2" in line and "time limit" in line for line in failed), failed
    assert any("seed=1" in line for line in failed), failed
    assert stderr.strip().splitlines()[-1].startswith("obsbench: error: 2 job(s) of the sweep did not finish")
    assert len(list((tmp_path / "outputs").glob("multirun/*/*/summary.csv"))) == 1  # the report ran

    store = ResultStore(tmp_path / "results")
    last = final_rows(load(store.root)).set_index("seed")
    assert sorted(last.index) == [0, 1, 2, 3]
    assert dict(last["status"]) == {0: "ok", 1: "interrupted", 2: "interrupted", 3: "ok"}
    assert "time limit" in last.loc[2, "message"]
    assert not store.has(last.loc[1, "run_id"]) and not store.has(last.loc[2, "run_id"])

    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "skipping 2 of 4 sweep points" in rerun.stdout and "Traceback" not in rerun.stdout + rerun.stderr
    last = final_rows(load(store.root))
    assert last["run_id"].nunique() == 4 and set(last["status"]) == {"ok"}

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "all 4 sweep points already stored" in again.stdout
    assert "submitted" not in again.stdout  # no job array this time
