"""Fault injection: faults become rows, kills lose nothing, bad input fails loudly before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.store.results import load
from problems.user_data import make_from_file

REPO = Path(__file__).resolve().parents[1]
FAULT_CONF = f"hydra.searchpath=[file://{REPO / 'tests' / 'fault_conf'}]"
#: Columns that legitimately differ between two runs of the same configuration.
VOLATILE = ["time_s", "created_at", "message"]


def stable(frame: pd.DataFrame) -> pd.DataFrame:
    """The deterministic part of a result table, in a canonical order."""
    return frame.drop(columns=VOLATILE).sort_values(["run_id", "iteration"]).reset_index(drop=True)


def test_faults_become_rows_and_the_sweep_goes_on(cli):
    done = cli("-m", FAULT_CONF, "solver=fault_raising,fault_nan,fault_hanging,cosamp", "seed=0",
               PYTHONPATH=str(REPO), timeout=120)
    assert done.returncode == 0, done.stderr
    last = load(cli.results).sort_values("iteration").groupby("solver").tail(1).set_index("solver")
    assert last.loc["fault_raising", "status"] == "error"
    assert "LinAlgError: injected failure" in last.loc["fault_raising", "message"]
    assert last.loc["fault_nan", "status"] == "diverged"
    assert last.loc["fault_hanging", "status"] == "timeout"  # killed inside time.sleep
    assert last.loc["fault_hanging", "time_s"] < 10
    assert last.loc["cosamp", "status"] == "ok"
    for status in ("error", "diverged", "timeout", "ok"):
        assert status in done.stdout  # the final summary counts every status


SWEEP = ("-m", "solver=iht,cosamp", "problem.k_star=3,4,5", "seed=0,1,2")


def test_kill_minus_nine_then_resume_gives_the_uninterrupted_table(cli, tmp_path):
    reference = cli.__class__(tmp_path / "reference")
    assert reference(*SWEEP).returncode == 0
    expected = stable(load(reference.results))
    assert expected["run_id"].nunique() == 18
    environment = {**os.environ, "OBSBENCH_RESULTS": str(cli.results), "OBSBENCH_OUTPUTS": str(cli.outputs)}
    exe = str(Path(sys.executable).with_name("obsbench"))
    for delay in np.random.default_rng(0).uniform(1.0, 3.0, size=3):
        process = subprocess.Popen([exe, *SWEEP], cwd=cli.root, env=environment, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        partial = load(cli.results)  # every stored file is complete and readable
        assert partial.empty or partial.groupby("run_id")["iteration"].min().eq(0).all()
    before = {p.name for p in cli.parquet_files()}
    resumed = cli(*SWEEP)
    assert resumed.returncode == 0
    # finished runs are not recomputed: their sweep points are not even launched (one run per point here)
    skipped = {0: "", 18: "all 18 sweep points already stored"}.get(len(before),
                                                                    f"skipping {len(before)} of 18 sweep points")
    assert skipped in resumed.stdout and "already stored, skipping" not in resumed.stdout
    pd.testing.assert_frame_equal(stable(load(cli.results)), expected)


def test_two_concurrent_sweeps_on_one_root_do_not_corrupt_each_other(cli):
    environment = {**os.environ, "OBSBENCH_RESULTS": str(cli.results), "OBSBENCH_OUTPUTS": str(cli.outputs)}
    exe = str(Path(sys.executable).with_name("obsbench"))
    sweeps = [("-m", "solver=iht,cosamp", "seed=0,1,2"), ("-m", "solver=cosamp,iht", "seed=2,1,0,3")]
    processes = [subprocess.Popen([exe, *args], cwd=cli.root, env=environment, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for args in sweeps]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read()[-2000:]
    frame = load(cli.results)
    assert frame["run_id"].nunique() == 8 == len(cli.parquet_files())
    assert not frame.duplicated(["run_id", "iteration"]).any()
    assert not list(cli.results.glob(".*.tmp"))


def test_results_are_identical_across_launchers_and_worker_counts(cli, tmp_path):
    args = ("solver=iht,cosamp", "seed=0,1")
    serial = cli.__class__(tmp_path / "serial")
    assert serial("-m", *args).returncode == 0
    assert cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *args).returncode == 0
    pd.testing.assert_frame_equal(stable(load(serial.results)), stable(load(cli.results)))


INVALID = [
    ("solver=iht", "solver.k=0"), ("solver=iht", "solver.max_iter=0"), ("solver=iht", "solver.tol=-1"),
    ("solver=iht", "solver.step_size=-0.5"), ("solver=cosamp", "solver.time_budget=0"),
    ("solver=lasso", "solver.lam=-1"), ("solver=basis_pursuit", "solver.method=simplex"),
    ("problem.m=0",), ("problem.k_star=0",), ("problem.matrix=cauchy",), ("problem.signal=laplace",),
    ("problem=cs_correlated", "problem.rho=1.5"), ("problem.noise_std=-0.1",), ("seed=-3",),
    ("solver=nope",), ("problem=nope",), ("problem.bogus=1",), ("problem=least_squares", "problem.kappa=0.5"),
    ("problem=from_file", "problem.path=/nonexistent.npz"),
    ("-m", "solver=iht", "problem.k_star=3,4,999"),  # one invalid point in a sweep: nothing runs
]


def test_fuzz_invalid_configs_exit_nonzero_with_one_line_and_write_nothing(cli):
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda args: cli(*args), INVALID))
    for args, done in zip(INVALID, outcomes):
        assert done.returncode != 0, args
        assert done.stderr.strip() and "\n" not in done.stderr.strip(), (args, done.stderr)
        assert "Traceback" not in done.stderr, args
    assert cli.parquet_files() == []


@pytest.mark.parametrize("arrays, word", [
    (dict(A=np.ones((4, 3)), y=np.ones(5)), "y has shape"),
    (dict(A=np.ones((4, 3)), y=np.ones(4), x_star=np.ones(2)), "x_star"),
    (dict(A=np.full((4, 3), np.nan), y=np.ones(4)), "NaN"),
    (dict(A=np.ones((0, 3)), y=np.ones(0)), "non-empty"),
    (dict(A=np.array([["a", "b"]]), y=np.ones(1)), "real numbers"),
    (dict(y=np.ones(4)), "missing array(s) A"),
])
def test_malformed_user_files_give_one_line_errors(tmp_path, arrays, word):
    path = tmp_path / "instance.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as info:
        make_from_file(str(path), k_star=1)
    message = str(info.value)
    assert message.startswith("problem from_file") and word in message and "\n" not in message


def test_user_files_load_from_npz_npy_folder_and_mat(tmp_path, easy_cs):
    import scipy.io

    np.savez(tmp_path / "a.npz", A=easy_cs.A, y=easy_cs.y, x_star=easy_cs.x_star)
    folder = tmp_path / "arrays"
    folder.mkdir()
    np.save(folder / "A.npy", easy_cs.A)
    np.save(folder / "y.npy", easy_cs.y)
    scipy.io.savemat(tmp_path / "a.mat", {"A": easy_cs.A, "y": easy_cs.y})
    with_truth = make_from_file(str(tmp_path / "a.npz"))
    assert with_truth.k_star == 5 and np.array_equal(with_truth.x_star, easy_cs.x_star)
    for path in (folder, tmp_path / "a.mat"):
        problem = make_from_file(str(path), k_star=5)
        assert np.array_equal(problem.A, easy_cs.A) and np.array_equal(problem.y, easy_cs.y)
        assert not problem.has_truth


def test_user_file_runs_through_the_cli(cli, easy_cs):
    np.savez(cli.root / "mine.npz", A=easy_cs.A, y=easy_cs.y, x_star=easy_cs.x_star)
    done = cli("problem=from_file", "problem.path=mine.npz", "solver=cosamp", "seed=0")
    assert done.returncode == 0, done.stderr
    assert load(cli.results)["rel_error"].iloc[-1] < 1e-10


def test_output_folder_probe_survives_a_concurrent_sweep_making_and_removing_parents(tmp_path, monkeypatch):
    """Two sweeps started together probe folders under one dated parent: one may find the parent made by the
    other between its check and its mkdir (EEXIST), or see it removed again by the other's clean-up (ENOENT).
    Neither is an error: the probe uses a parent made by another sweep, leaves it, and retries a vanished one."""
    from experiments.execution import preflight

    target = tmp_path / "multirun" / "2026-12-02" / "17-41-11-535883"
    real_mkdir = Path.mkdir
    calls = {"date": 0, "leaf": 0}

    def racing_mkdir(self, *args, **kwargs):
        if self.name == "2026-12-02" and calls["date"] == 0:
            calls["date"] += 1
            real_mkdir(self)  # the other sweep made it first
            raise FileExistsError(17, "File exists", str(self))
        if self == target and calls["leaf"] == 0:
            calls["leaf"] += 1
            raise FileNotFoundError(2, "No such file or directory", str(self))  # and removed it once
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", racing_mkdir)
    made: list[Path] = []
    assert preflight.writable_folder(str(target), "hydra.sweep.dir", made) == target
    assert calls == {"date": 1, "leaf": 1}
    assert target in made and tmp_path / "multirun" / "2026-12-02" not in made  # the other sweep's is not ours
    preflight.remove_folders(made)  # as when a later check refuses the run
    assert (tmp_path / "multirun" / "2026-12-02").is_dir()  # the other sweep's folder is left to it
    assert not target.exists()  # the probe's own folder is removed
