"""Runs ended by the scheduler are not results.

On a cluster a job can end for reasons that have nothing to do with the solver: the time limit (submitit's
warning signal, SIGUSR2 ``signal_delay_s`` before the limit, after which submitit raises ``UncompletedJobError:
Job not requeued because: timed-out too many times``), pre-emption, ``scancel`` or a node going down (SIGTERM,
then SIGKILL after SLURM's ``KillWait``). The solver loop turns every ``Exception`` raised inside a solve into a
final ``error`` row, and such a row would be skipped by every rerun ("already stored"). So while a job runs,
`scheduler_signals` wraps the scheduler's signal handlers: the signal ends the solve with `Interrupted`, a
``BaseException`` that no solver loop catches; the runner then stores the run with status ``interrupted`` and the
cause in ``message`` — a record of what happened, which `experiments.store.results.ResultStore.has` does not
count as stored, so the next run of the same command recomputes it — and the job ends with `JobInterrupted`,
which the submitter reports in one line.

Only genuine solver outcomes are final: ``ok``, ``max_iter``, ``stalled``, ``diverged``, ``error`` and ``timeout``
(the solver's own ``time_budget``, a setting of the run). ``interrupted`` is never final.

Outside a cluster job nothing changes: a signal is wrapped only where a Python handler is installed (submitit
installs one for SIGUSR2 and SIGTERM in every job), so a local ``kill`` still ends the process at once (nothing
half-written is ever stored: see `experiments.store.results.atomic_write`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import types
from typing import Any, Callable, Iterator

import numpy as np

from experiments.store.status import INTERRUPTED, NOT_FINAL  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)



class Interrupted(BaseException):
    """The scheduler is ending the job while a run computes. A ``BaseException`` so that ``except Exception`` in a
    solver loop (a solver fault becomes an ``error`` row) lets it through."""

    def __init__(self, cause: str, original: BaseException | None = None):
        super().__init__(cause)
        self.cause = cause
        self.original = original


class JobInterrupted(RuntimeError):
    """What a job raises after recording its interrupted runs: Hydra marks the job failed with this message, and
    the submitter (`experiments.execution.sweep`) reports it in one line."""


def _scheduler_signals() -> list[signal.Signals]:
    """SIGTERM and submitit's warning signal (``SUBMITIT_PREEMPT_SIGNAL``, USR2 by default)."""
    names = ["TERM", os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]
    return list(dict.fromkeys(getattr(signal, f"SIG{name}") for name in names if hasattr(signal, f"SIG{name}")))


_active: dict[int, Any] = {}  # signal number -> the handler we replaced, while `scheduler_signals` is active


def _cause(signum: int, error: BaseException | None) -> str:
    name = signal.Signals(signum).name
    if error is not None:
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        limit = " (time limit)" if "timed-out" in text or "timed out" in text else ""
        return f"ended by the scheduler{limit}: {name}, {text}"
    if signum == signal.SIGTERM:
        return f"ended by the scheduler: {name} (job cancelled, pre-empted or node shutting down)"
    return f"ended by the scheduler: {name}"


_fired: list[int] = []  # the signal that already interrupted this job (later ones are ignored: it is ending)


def _wrap(signum: int, previous: Callable[[int, Any], Any]) -> Callable[[int, Any], None]:
    def handler(number: int, frame: types.FrameType | None) -> None:
        if _fired:  # e.g. scancel's SIGTERM arrives twice (slurmstepd, srun): record and stop only once
            return
        _fired.append(number)
        try:
            previous(number, frame)
        except SystemExit:
            raise  # submitit requeued the job (pre-emption): nothing is stored, the requeued job recomputes
        except Exception as error:  # submitit: UncompletedJobError("Job not requeued because: ...")
            raise Interrupted(_cause(number, error), error) from error
        raise Interrupted(_cause(number, None))

    return handler


@contextlib.contextmanager
def scheduler_signals() -> Iterator[None]:
    """While the block runs, a scheduler signal (see the module docstring) raises `Interrupted` after the
    scheduler's own handler ran. Re-entrant (an inner use is a no-op); only the main thread can hold it."""
    import threading

    if _active or threading.current_thread() is not threading.main_thread():
        yield
        return
    for signum in _scheduler_signals():
        previous = signal.getsignal(signum)
        if callable(previous):  # a cluster job (submitit's handlers) or a test standing in for one
            _active[signum] = previous
            signal.signal(signum, _wrap(signum, previous))
    try:
        yield
    finally:
        for signum, previous in _active.items():
            signal.signal(signum, previous)
        _active.clear()
        _fired.clear()


def detach_child() -> None:
    """In a forked worker (`experiments.execution.guard`): ignore the scheduler's signals, which the parent
    handles (it records the run and kills the worker)."""
    for signum in list(_active):
        signal.signal(signum, signal.SIG_IGN)
    _active.clear()


def quiet_pool_worker() -> None:
    """In a joblib/loky worker process: ignore SIGINT. Ctrl-C reaches the whole process group; the parent
    reports it in one line and stops the pool, so a worker's own KeyboardInterrupt traceback is noise. In the
    main process (``n_jobs=1`` runs tasks in-process) nothing changes."""
    import multiprocessing

    if multiprocessing.current_process().name != "MainProcess":
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class Progress:
    """Observer of a solve (a solver callback) keeping the rows recorded so far, so that an interrupted run is
    stored with the iterations it did compute (`interrupted_result`)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.x: np.ndarray | None = None

    def start(self, solver: Any, state: Any, row: dict[str, Any]) -> None:
        self.rows, self.x = [row], state.x

    def __call__(self, solver: Any, state: Any, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.x = state.x


def interrupted_result(problem: Any, progress: Progress, stop: Interrupted, elapsed: float) -> Any:
    """A `solvers.base.Result` with status ``interrupted``: the rows recorded before the signal (or the starting
    point only), and the cause in the message."""
    from solvers.base import Result, Trace

    rows = [dict(row) for row in progress.rows]
    if not rows:
        trace = Trace(problem)
        trace.record(0, problem.x0, elapsed)
        rows = trace.rows
    n_iter = int(rows[-1].get("iteration", 0))
    x = progress.x if progress.x is not None else problem.x0
    message = f"{stop.cause}; after {n_iter} iterations, {elapsed:.3g} s; not a result: a rerun recomputes it"
    return Result(x=np.array(x, copy=True), status=INTERRUPTED, message=message, n_iter=n_iter, time_s=elapsed,
                  trace=rows)


def solve(problem: Any, observers: list[Any], run: Callable[[list[Any]], Any]) -> tuple[Any, Interrupted | None]:
    """``run(observers)`` (a solve) under `scheduler_signals`: its result and None, or, when the scheduler ends the
    job meanwhile, an ``interrupted`` result (`interrupted_result`) and the `Interrupted` that stopped it."""
    import time

    progress = Progress()
    tic = time.perf_counter()
    try:
        with scheduler_signals():
            return run([*observers, progress]), None
    except Interrupted as stop:
        log.warning("run interrupted: %s", stop.cause)
        return interrupted_result(problem, progress, stop, time.perf_counter() - tic), stop
