"""Runs ended by the scheduler (time limit, pre-emption, scancel) are recorded as `interrupted`, never as solver
outcomes, and a rerun recomputes them (issue #20). SLURM is simulated: submitit's own signal handlers (the ones
it installs in every job) are installed in this process, and the solver sends itself the signal mid-solve."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from submitit.core.utils import UncompletedJobError

from experiments.execution import interrupt
from experiments.execution.runner import RunSpec, execute
from experiments.store.results import ResultStore, load
from solvers.base import IterativeSolver, State

PROBLEM = {"_target_": "problems.regression.make_least_squares", "n": 40, "d": 20, "k_star": 3, "kappa": 2.0}


class SignalsItself(IterativeSolver):
    """A slow IHT-like solver that, when ``SIGNAL_PID`` is set, sends ``SIGNAL_NAME`` to that process at
    iteration ``SIGNAL_AT`` — as SLURM does before the time limit (SIGUSR2) or on scancel (SIGTERM)."""

    name = "signals_itself"
    references = ("test double",)

    def step(self, problem, state):
        t = state.cache.get("t", 0) + 1
        if os.environ.get("SIGNAL_PID") and t == int(os.environ.get("SIGNAL_AT", "5")):
            os.kill(int(os.environ["SIGNAL_PID"]), getattr(signal, os.environ.get("SIGNAL_NAME", "SIGUSR2")))
            time.sleep(0.5)  # the handler runs here, as it would in the middle of a BLAS call's aftermath
        x = state.x - 0.5 * problem.gradient(state.x)
        keep = np.argsort(np.abs(x))[-self.k_:]
        out = np.zeros_like(x)
        out[keep] = x[keep]
        return State(x=out, step_size=0.5, cache={"t": t})


SOLVER = {"_target_": "tests.test_scheduler_interrupts.SignalsItself", "k": 3, "max_iter": 40, "tol": 1e-30}


@pytest.fixture
def submitit_handlers():
    """The handlers submitit installs in a job: SIGUSR2 -> 'Job not requeued because: timed-out too many times'
    (hydra's preset sets max_num_timeout: 0), SIGTERM -> logged and bypassed."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM)}

    def usr2(signum, frame):
        raise UncompletedJobError("Job not requeued because: timed-out too many times.")

    def bypass(signum, frame):
        pass

    signal.signal(signal.SIGUSR2, usr2)
    signal.signal(signal.SIGTERM, bypass)
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def _spec(**solver):
    return RunSpec(experiment="convergence", problem=PROBLEM, solver={**SOLVER, **solver}, seed=0, oracle="off")


@pytest.mark.parametrize("budget", [None, 30.0], ids=["in-process", "forked-worker"])
def test_time_limit_signal_is_recorded_as_interrupted_and_recomputed(tmp_path, monkeypatch, submitit_handlers,
                                                                     budget):
    store = ResultStore(tmp_path / "results")
    spec = _spec(time_budget=budget)
    monkeypatch.setenv("SIGNAL_PID", str(os.getpid()))
    with pytest.raises(interrupt.JobInterrupted, match="time limit.*timed-out too many times"):
        execute(spec, store)
    rows = store.read(spec.run_id)
    assert set(rows["status"]) == {"interrupted"}
    assert "a rerun recomputes it" in rows["message"].iloc[0]
    if budget is None:  # in process the iterations done before the signal are kept
        assert rows["iteration"].max() == 4
    assert store.exists(spec.run_id) and not store.has(spec.run_id)  # a record, not a result
    assert set(load(store.root, [spec.run_id])["status"]) == {"interrupted"}  # reports still show it
    assert signal.getsignal(signal.SIGUSR2).__name__ == "usr2"  # handlers restored after the solve

    monkeypatch.delenv("SIGNAL_PID")
    again = execute(spec, store)  # the rerun computes it: no "already stored"
    assert set(again["status"]) <= {"ok", "max_iter"} and store.has(spec.run_id)
    assert set(store.read(spec.run_id)["status"]) <= {"ok", "max_iter"}


def test_scancel_sigterm_is_recorded_as_interrupted(tmp_path, monkeypatch, submitit_handlers):
    store = ResultStore(tmp_path / "results")
    spec = _spec()
    monkeypatch.setenv("SIGNAL_PID", str(os.getpid()))
    monkeypatch.setenv("SIGNAL_NAME", "SIGTERM")
    with pytest.raises(interrupt.JobInterrupted, match="SIGTERM"):
        execute(spec, store)
    assert set(store.read(spec.run_id)["status"]) == {"interrupted"} and not store.has(spec.run_id)


def test_preemption_requeue_stores_nothing(tmp_path, monkeypatch):
    """On pre-emption submitit requeues the job and exits (SystemExit): nothing is stored, the requeued job
    computes the run from the start."""
    def requeue(signum, frame):
        raise SystemExit(-1)

    saved = signal.signal(signal.SIGUSR2, requeue)
    try:
        store = ResultStore(tmp_path / "results")
        spec = _spec()
        monkeypatch.setenv("SIGNAL_PID", str(os.getpid()))
        with pytest.raises(SystemExit):
            execute(spec, store)
        assert not store.exists(spec.run_id)
    finally:
        signal.signal(signal.SIGUSR2, saved)


def test_solver_faults_stay_final(tmp_path, monkeypatch, submitit_handlers):
    """An exception of the solver itself (even submitit's class, raised by the solver) is an `error` result."""
    store = ResultStore(tmp_path / "results")

    def fail(self, problem, state):
        raise UncompletedJobError("raised by the solver, not by a signal")

    monkeypatch.setattr(SignalsItself, "step", fail)
    spec = _spec()
    frame = execute(spec, store)
    assert set(frame["status"]) == {"error"} and store.has(spec.run_id)


def test_without_scheduler_handlers_signals_are_untouched():
    """Outside a cluster job (default handlers) nothing is wrapped: a local kill still ends the process."""
    before = signal.getsignal(signal.SIGTERM)
    with interrupt.scheduler_signals():
        assert signal.getsignal(signal.SIGTERM) is before


class FakeJob:
    """A submitit job as `wait_for` sees it: done() / results() / state / paths.result_pickle."""

    def __init__(self, job_id, tmp_path, outcome=None, error=None, state="UNKNOWN"):
        self.job_id, self.outcome, self.error, self.state = job_id, outcome, error, state
        self.paths = type("Paths", (), {"result_pickle": tmp_path / f"{job_id}_result.pkl"})()

    def done(self):
        return self.outcome is not None or self.error is not None

    def results(self):
        if self.error is not None:
            raise self.error
        return [self.outcome]


def test_the_submitter_survives_cancelled_failed_and_lost_tasks(tmp_path, monkeypatch):
    from hydra.core.utils import JobReturn, JobStatus
    from submitit.core.utils import FailedJobError

    from experiments.execution import submitted

    queue = {"7_3"}  # 7_2 has left the queue without a result (no sacct to say so), 7_3 still runs ...
    monkeypatch.setattr(submitted, "queued_tasks", lambda ids: set(queue) & set(ids))
    ok = JobReturn(overrides=["seed=0"], status=JobStatus.COMPLETED, _return_value="rows")
    jobs = [FakeJob("7_0", tmp_path, outcome=ok),
            FakeJob("7_1", tmp_path, error=UncompletedJobError(
                "Job 7_1 (task: 0) with path /x/7_1_0_result.pkl\n"
                "has not produced any output (state: CANCELLED by 0)")),
            FakeJob("7_2", tmp_path),
            FakeJob("7_3", tmp_path, error=FailedJobError(
                "Job (task=0) failed during processing with trace:\n----------------------\nTraceback (most recent "
                "call last):\n  File \"x.py\", line 1\nMemoryError: out of memory\n"))]
    polls = {"n": 0}
    real_sleep = time.sleep

    def sleep(seconds):  # ... and ends after a few polls
        polls["n"] += 1
        if polls["n"] == 3:
            queue.clear()
        real_sleep(0.01)

    monkeypatch.setattr(submitted.time, "sleep", sleep)
    returns = submitted.wait_for(jobs, [["seed=0"], ["seed=1"], ["seed=2"], ["seed=3"]], poll_s=0.01,
                                 lost_after_s=0.0)
    assert [r.status for r in returns] == [JobStatus.COMPLETED] + [JobStatus.FAILED] * 3
    reasons = [submitted.one_line(r._return_value) for r in returns[1:]]
    assert "CANCELLED" in reasons[0] and "\n" not in reasons[0]
    assert reasons[1].startswith("task 7_2 left the queue without a result")
    assert reasons[2].endswith("MemoryError: out of memory")
