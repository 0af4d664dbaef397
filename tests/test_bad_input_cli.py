"""Issue 17: no traceback for any input, no stale results.

Every bad input, unusable folder and interruption ends in one line on stderr, a non-zero exit status and nothing
written (no parquet, no Hydra output folder); a rewritten user file is a new run; damaged or foreign files in a
results root are skipped with one warning line naming them.

The ``obsbench`` / ``obsbench-collect`` entry functions run in-process inside one driver subprocess per batch of
cases (a fresh interpreter per case would cost ~2 s each); the interruption test runs the real console script.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.execution.preflight import content_digest
from experiments.store.results import load

#: Runs each case's command through the real entry functions, each in its own folder with its own results and
#: outputs roots (as the `Cli` fixture sets them), and prints {name: {code, stderr, stdout, new}} as JSON.
DRIVER = r'''
import contextlib, errno, io, json, logging, os, shutil, sys, time
from pathlib import Path

os.umask(0o022)
cases, extra_path = json.loads(sys.argv[1]), sys.argv[2]
sys.path.insert(0, extra_path)
from experiments.app.run import main as obsbench
from experiments.store.collect import main as collect
import pandas as pd


def snapshot(folder):
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def full_disk_after(stored):
    """DataFrame.to_parquet fails as a full disk does (ENOSPC, half a file written) after `stored` writes."""
    original, calls = pd.DataFrame.to_parquet, [0]

    def write(self, path=None, *args, **kwargs):
        calls[0] += 1
        if calls[0] > stored:
            path.write(b"PAR1 half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, path, *args, **kwargs)

    pd.DataFrame.to_parquet = write
    return lambda: setattr(pd.DataFrame, "to_parquet", original)


results, home = {}, os.getcwd()
for case in cases:
    folder = Path(case["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    for source, target in case.get("copy", []):
        shutil.copy(source, folder / target)
    env = {"OBSBENCH_RESULTS": str(folder / "results"), "OBSBENCH_OUTPUTS": str(folder / "outputs"),
           **case.get("env", {})}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    before = snapshot(folder)
    os.chdir(folder)
    restore = full_disk_after(case["full_disk_after"]) if "full_disk_after" in case else (lambda: None)
    for handler in logging.root.handlers[:]:
        logging.root.removeHandler(handler)
    err, out, code, tic = io.StringIO(), io.StringIO(), 0, time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            if case.get("collect"):
                collect(case["args"])
            else:
                sys.argv = ["obsbench", *case["args"]]
                obsbench()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    restore()
    os.chdir(home)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    results[case["name"]] = dict(code=code, stderr=err.getvalue(), stdout=out.getvalue(),
                                 new=sorted(snapshot(folder) - before), seconds=time.perf_counter() - tic)
sys.__stdout__.write("@@" + json.dumps(results) + "\n")
'''

#: A problem generator whose failure is not a ValueError (the pre-sweep validation must stop on it too).
EXPLODING = '''
def make(error="runtime", d=10, seed=0, name="exploding"):
    if error == "memory":
        raise MemoryError("Unable to allocate 715. GiB for an array with shape (96, 1000000000)")
    raise RuntimeError("generator exploded")
'''


def drive(tmp_path: Path, cases: list[dict]) -> dict[str, dict]:
    """Run ``cases`` (name, args, optional folder, env, copy, collect, full_disk_after) in one subprocess."""
    for case in cases:
        case.setdefault("folder", str(tmp_path / case["name"]))
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases), str(tmp_path / "userpkg")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    marked = [line for line in done.stdout.splitlines() if line.startswith("@@")]
    assert done.returncode == 0 and marked, done.stderr[-3000:]
    outcomes = json.loads(marked[-1][2:])
    if os.environ.get("OBSBENCH_TEST_TIMES"):
        print({name: round(outcome["seconds"], 2) for name, outcome in outcomes.items()})
    return outcomes


def at_a_terminal(command: list[str]) -> list[str]:
    """``command`` with SIGINT at its default, as a process started from a terminal has it. A test runner started
    in the background by a non-interactive shell inherits SIGINT ignored, and so would obsbench, which then never
    sees the Ctrl-C these tests send; ``execv`` keeps the process id (for ``killpg``)."""
    reset = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-c", reset, *command]


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_refused(outcome: dict, *words: str, code: int | None = None) -> None:
    """One line on stderr naming ``words``, a non-zero status, no traceback, nothing written."""
    said = lines(outcome["stderr"])
    assert outcome["code"] != 0 and (code is None or outcome["code"] == code), outcome
    assert len(said) == 1 and said[0].startswith("obsbench"), said
    assert "Traceback" not in outcome["stderr"] and "Warning" not in outcome["stderr"], said
    assert not re.search(r"/\S+\.py:\d", said[0]), said  # no path of Python source (e.g. a warning of Hydra's)
    for word in words:
        assert word in said[0], (word, said[0])
    assert outcome["new"] == [], outcome["new"]  # no parquet, no results root, no Hydra output folder


def _writable(folder: Path) -> bool:
    probe = folder / f"obsbench-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    probe.rmdir()
    return True


def instance(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((30, 40))
    x = np.zeros(40)
    x[rng.choice(40, 3, replace=False)] = rng.standard_normal(3) + 2
    np.savez(path, A=A, y=A @ x, x_star=x)


@pytest.fixture
def files(tmp_path):
    """The user files and folders the cases read."""
    (tmp_path / "userpkg").mkdir()
    (tmp_path / "userpkg" / "exploding.py").write_text(EXPLODING)
    conf = tmp_path / "userconf" / "problem"
    conf.mkdir(parents=True)
    (conf / "exploding.yaml").write_text("_target_: exploding.make\nname: exploding\nerror: runtime\nd: 10\n")
    (tmp_path / "text.mat").write_text("a,b,c\n1,2,3\n")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ") + b"\0" * 8 + b"\x00\x02IM"
    (tmp_path / "v73.mat").write_bytes(header + b"\0" * 512)
    (tmp_path / "a_file").write_text("not a folder")
    instance(tmp_path / "inst_a.npz", 0)
    instance(tmp_path / "inst_b.npz", 1)
    return tmp_path


def test_every_bad_input_is_one_line_nonzero_and_writes_nothing(files):
    a_file = str(files / "a_file")
    searchpath = f"hydra.searchpath=[file://{files / 'userconf'}]"
    cases = [
        # memory: refused from the dimensions, before anything is allocated
        ("memory", ["problem=cs_gaussian", "problem.d=1000000000"], ["bytes", "available"]),
        ("memory_newton", ["hydra.mode=RUN", "problem=least_squares", "problem.n=300000", "problem.d=200000",
                           "solver=topk_iobs"], ["Hessian", "available"]),
        # any exception while building a sweep point stops the sweep (not only ValueError)
        ("runtime_error", [searchpath, "problem=exploding", "solver=omp", "solver.k=2"],
         ["RuntimeError: generator exploded", "sweep point"]),
        ("memory_error", [searchpath, "problem=exploding", "problem.error=memory", "solver=omp", "solver.k=2"],
         ["out of memory", "715"]),
        # user files scipy cannot read
        ("mat_text", ["problem=from_file", f"problem.path={files / 'text.mat'}", "solver=omp"],
         ["text.mat", "not a readable MATLAB file", "npz"]),
        ("mat_v73", ["problem=from_file", f"problem.path={files / 'v73.mat'}", "solver=omp"],
         ["v73.mat", "v7.3", "-v7", ".npz"]),
        # integers the result store (int64) cannot hold
        ("seed", ["solver=omp", "seed=1180591620717411303424"], ["seed=1180591620717411303424", "64-bit"]),
        ("max_iter", ["solver=iht", "solver.max_iter=100000000000000000000"], ["solver.max_iter", "64-bit"]),
        # results root unusable
        ("root_file", ["solver=omp", f"paths.results={a_file}"], ["paths.results", "is a file"]),
        ("root_under_file", ["solver=omp", f"paths.results={a_file}/results"], ["paths.results", "is a file"]),
        ("root_proc", ["solver=omp", "paths.results=/proc/obsbench-results"], ["paths.results", "cannot be created"]),
        ("root_env_file", ["solver=omp"], ["OBSBENCH_RESULTS", "is a file"], {"OBSBENCH_RESULTS": a_file}),
        ("root_empty", ["solver=omp", "paths.results=''"], ["paths.results is empty"]),
        # partly clean before: Hydra files, 5 lines, a traceback folded into a line, a Python warning path
        ("run_mode", ["hydra.mode=RUN", "solver.k=0"], ["k=0"]),
        ("constants", ["experiment=constants", "problem=cs_gaussian", "problem.m=0"], ["m=0"]),
        ("interpolation", ["problem=cs_gaussian", "problem.m=${nope}"], ["nope", "problem.m=${nope}"]),
        ("joblib_n_jobs", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], ["hydra.launcher.n_jobs=0"]),
        ("outputs_file", ["solver=omp", f"paths.outputs={a_file}"], ["paths.outputs", "is a file"]),
        ("unknown_key", ["-m", "solver=iht,basis_pursuit", "solver.max_iter=300"], ["solver.max_iter"]),
    ]
    if not _writable(Path("/sys")):  # a read-only mount (sysfs refuses new folders, even to root)
        cases.append(("root_read_only", ["solver=omp", "paths.results=/sys/obsbench-results"], ["cannot be"]))
    if os.geteuid() != 0:  # root writes into a read-only folder anyway
        (files / "read_only").mkdir(mode=0o555)
        cases.append(("root_read_only_dir", ["solver=omp", f"paths.results={files / 'read_only' / 'r'}"],
                      ["cannot be created or written"]))
    outcomes = drive(files, [dict(name=name, args=args, env=(rest[0] if rest else {}))
                             for name, args, _words, *rest in cases])
    for name, _args, words, *_rest in cases:
        assert_refused(outcomes[name], *words)
    assert outcomes["seed"]["code"] == 2 and outcomes["runtime_error"]["code"] != 0


def test_stale_data_damaged_files_umask_full_disk_and_collect(files):
    """A rewritten user file is a new run; damaged and foreign parquet files are skipped with one line and the
    damaged run recomputed; result files follow the umask; a full disk stops the sweep in one line, keeping the
    runs stored, and the same command resumes; ``obsbench-collect --out <file>`` is one line."""
    sweep = ["-m", "problem=from_file", "problem.path=inst.npz", "solver=omp", "seed=0,1"]
    three = ["-m", "solver=omp", "seed=0,1,2"]
    first = drive(files, [dict(name="good", args=sweep, copy=[[str(files / "inst_a.npz"), "inst.npz"]]),
                          dict(name="full_disk", args=three, full_disk_after=2)])
    assert first["good"]["code"] == 0, first
    good = files / "good" / "results"
    stored = sorted(good.glob("*.parquet"))
    assert len(stored) == 2
    assert {oct(p.stat().st_mode & 0o777) for p in stored} == {"0o644"}  # umask 022, not 0600
    # a full disk mid-sweep: one line, the runs already stored stay valid, no temporary file left
    full = first["full_disk"]
    said = lines(full["stderr"])
    assert full["code"] == 1 and len(said) == 1 and "no space left" in said[0] and "rerun" in said[0], said
    assert "Traceback" not in full["stderr"]
    written = [Path(p).name for p in full["new"] if p.startswith("results/") and p.count("/") == 1]
    assert len([p for p in written if p.endswith(".parquet")]) == 2  # jobs 0 and 1 stored, job 2 not
    assert not [p for p in written if p.endswith(".tmp")]  # the half-written file was removed
    root = files / "full_disk" / "results"
    assert load(root)["run_id"].nunique() == 2
    # damage one stored run of that root (its rerun must recompute it), a copy of another root, add a foreign file
    victim, intact = sorted(root.glob("*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    intact_stamp = intact.stat().st_mtime_ns
    for name in ("damaged_collect", "foreign"):
        shutil.copytree(good, files / name / "results")
    for path in (sorted((files / "damaged_collect" / "results").glob("*.parquet"))[0], victim):
        path.write_bytes(b"PAR1" + b"\x13 damaged bytes " * 8 + b"PAR1")
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_parquet(files / "foreign" / "results" / "zz.parquet")

    second = drive(files, [
        dict(name="stale", folder=str(files / "good"), args=sweep, copy=[[str(files / "inst_b.npz"), "inst.npz"]]),
        dict(name="damaged_collect", args=[str(files / "damaged_collect" / "results")], collect=True),
        dict(name="foreign", args=[str(files / "foreign" / "results")], collect=True),
        dict(name="collect_out_file", args=[str(good), "--out", str(files / "a_file")], collect=True),
        dict(name="resume", folder=str(files / "full_disk"), args=three),
    ])
    # stale results: the rewritten instance gives new runs, computed, never the stored ones read back
    assert second["stale"]["code"] == 0 and "already stored" not in second["stale"]["stdout"]
    frame = load(good)
    assert frame["run_id"].nunique() == 4 and len(list(good.glob("*.parquet"))) == 4
    assert frame.groupby("run_id")["rel_error"].last().lt(1e-8).all()  # each run solved its own instance
    # the identity follows the content, not the file's time stamp: an untouched file keeps its runs
    inst = files / "good" / "inst.npz"
    digest = content_digest({"path": str(inst)})
    os.utime(inst, (1, 1))
    assert content_digest({"path": str(inst)}) == digest != content_digest({"path": str(files / "inst_a.npz")})
    # the same command resumes after the full disk: the intact run is kept, the damaged and the missing computed
    resume = second["resume"]
    assert resume["code"] == 0 and "Traceback" not in resume["stderr"], resume
    assert intact.stat().st_mtime_ns == intact_stamp
    assert load(root)["run_id"].nunique() == 3
    # a damaged file: one warning line naming it, the others collected (and it is moved aside)
    damaged = second["damaged_collect"]
    warned = [line for line in lines(damaged["stderr"]) if "skipped" in line]
    assert damaged["code"] == 0 and len(warned) == 1 and "unreadable" in warned[0] and ".parquet" in warned[0]
    collected = pd.read_csv(files / "damaged_collect" / "results" / "collected.csv")
    assert collected["run_id"].nunique() == 1
    # a foreign parquet: one warning line naming it, never merged
    foreign = second["foreign"]
    warned = [line for line in lines(foreign["stderr"]) if "skipped" in line]
    assert foreign["code"] == 0 and len(warned) == 1 and "zz.parquet" in warned[0]
    collected = pd.read_csv(files / "foreign" / "results" / "collected.csv")
    assert len(collected) == 2 and not {"a", "b"} & set(collected.columns)
    # obsbench-collect --out <a file>
    out_file = second["collect_out_file"]
    assert out_file["code"] != 0 and lines(out_file["stderr"]) == [
        f"obsbench-collect: error: --out {files / 'a_file'} is a file, not a folder"]


def test_ctrl_c_during_a_sweep_is_one_line_and_status_130(cli):
    environment = {**os.environ, "OBSBENCH_RESULTS": str(cli.results), "OBSBENCH_OUTPUTS": str(cli.outputs),
                   "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    environment.pop("HYDRA_FULL_ERROR", None)
    exe = str(Path(sys.executable).with_name("obsbench"))
    process = subprocess.Popen(at_a_terminal([exe, "-m", "solver=iht", "seed=range(8)", "problem=cs_gaussian",
                                              "problem.d=1500", "problem.m=450"]), cwd=cli.root, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    for line in process.stdout:  # wait until a run has been stored: the sweep is under way
        if " ok after " in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert lines(stderr) == ["obsbench: interrupted; rerun the same command to resume"], stderr
    assert load(cli.results).groupby("run_id")["iteration"].min().eq(0).all()  # what is stored is complete


def test_ctrl_c_to_the_process_group_during_a_phase_diagram_is_one_line(cli):
    """Ctrl-C reaches the joblib workers of a grid too: they stay quiet, the parent prints the one line."""
    environment = {**os.environ, "OBSBENCH_RESULTS": str(cli.results), "OBSBENCH_OUTPUTS": str(cli.outputs),
                   "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    environment.pop("HYDRA_FULL_ERROR", None)
    exe = str(Path(sys.executable).with_name("obsbench"))
    process = subprocess.Popen(at_a_terminal([exe, "experiment=phase_transition", "solver=cosamp", "problem.d=200",
                                              "experiment.deltas=15", "experiment.rhos=15", "experiment.trials=20",
                                              "experiment.n_jobs=2", "experiment.progress=false"]),
                               cwd=cli.root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    for line in process.stdout:  # the grid is under way once the job logs its plan
        if "cells already stored" in line or time.monotonic() > deadline:
            break
    time.sleep(3)  # the workers are solving
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert lines(stderr.replace("\r", "\n")) == ["obsbench: interrupted; rerun the same command to resume"], stderr
