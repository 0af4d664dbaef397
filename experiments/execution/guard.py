"""Hard time budgets: run a solve in a forked worker process and kill it at the deadline.

The solver loop checks its ``time_budget`` between iterations; a single long BLAS or cvxpy call cannot be
interrupted from inside, so the harness runs budgeted solves in a child process and terminates it when
``time_budget · GRACE_FACTOR + GRACE_SECONDS`` has passed. The killed run becomes a ``timeout`` row.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from multiprocessing.connection import Connection

from typing import Any, Sequence

from experiments.execution import interrupt
from problems.base import Problem
from solvers.base import Result, Solver, Trace

log = logging.getLogger(__name__)

GRACE_FACTOR = 1.5
GRACE_SECONDS = 1.0


def _solve_in_child(solver: Solver, problem: Problem, channel: Connection, callbacks: Sequence[Any]) -> None:
    interrupt.detach_child()  # the parent answers the scheduler's signals (and kills this worker)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the parent reports it alone
    try:
        channel.send(solver.run(problem, callbacks=callbacks))
    finally:
        channel.close()


def hard_deadline(time_budget: float) -> float:
    """Seconds after which a budgeted solve is killed."""
    return time_budget * GRACE_FACTOR + GRACE_SECONDS


def run_with_deadline(solver: Solver, problem: Problem, deadline: float, callbacks: Sequence[Any] = ()) -> Result:
    """``solver.run(problem, callbacks)`` in a forked child; a child still running after ``deadline`` seconds is killed
    and the run is reported with status ``timeout`` (its trace holds the starting point only)."""
    context = mp.get_context("fork")  # the child inherits problem and solver without pickling them
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_solve_in_child, args=(solver, problem, sender, list(callbacks)),
                            daemon=True)
    tic = time.perf_counter()
    child.start()
    sender.close()
    try:
        if receiver.poll(deadline):
            return receiver.recv()
    except EOFError:  # the child died without sending (e.g. killed by the OS)
        child.join()
        return _failed(problem, "error", f"worker process died with exit code {child.exitcode}",
                       time.perf_counter() - tic)
    finally:
        if child.is_alive() and not receiver.poll(0):
            child.kill()
        child.join()
        receiver.close()
    log.warning("%s killed after %.1f s (hard deadline)", solver.name, deadline)
    return _failed(problem, "timeout", f"killed at the hard deadline of {deadline:.3g} s", time.perf_counter() - tic)


def _failed(problem: Problem, status: str, message: str, elapsed: float) -> Result:
    trace = Trace(problem)
    trace.record(0, problem.x0, elapsed)
    return Result(x=problem.x0.copy(), status=status, message=message, n_iter=0, time_s=elapsed, trace=trace.rows)
