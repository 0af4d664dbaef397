"""Waiting for the tasks of a SLURM job array without trusting any single source of truth.

submitit's ``job.results()`` raises on the first task that was cancelled or failed (a traceback that ends the
submitter while the other tasks keep running, unannounced), and without SLURM accounting (no ``sacct``) it
never learns that a killed task is gone, so it waits forever. `wait_for` polls every task instead: a task is
finished when submitit says so (result file, or a final ``sacct`` state), *or* when it has left the queue
(``squeue``) and no result appeared within ``lost_after_s``. Each task becomes a Hydra ``JobReturn``: its own,
or a failed one whose value is a `TaskFailed` with a one-line reason. While waiting, the submitter says how many
tasks are still pending or running; if it is stopped (Ctrl-C), it names the tasks still in SLURM.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus

log = logging.getLogger(__name__)

#: Seconds between two polls of the tasks (``OBSBENCH_POLL_S``).
POLL_S = float(os.environ.get("OBSBENCH_POLL_S", "2"))
#: Seconds a task may be absent from ``squeue`` without a result before it counts as lost (``OBSBENCH_LOST_AFTER_S``):
#: long enough for its result file to appear on a shared file system.
LOST_AFTER_S = float(os.environ.get("OBSBENCH_LOST_AFTER_S", "60"))
#: Seconds between two "still waiting" lines.
NOTE_EVERY_S = 60.0


class TaskFailed(RuntimeError):
    """A task that ended without a result (cancelled, failed, lost): its one-line reason."""


def one_line(error: BaseException | str) -> str:
    """The first meaningful line of an error (submitit's messages carry the task's whole traceback)."""
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    # a FailedJobError's text ends with the task's own exception: its last line is the informative one
    if len(lines) > 1 and any(line.startswith("Traceback") for line in lines):
        return f"{lines[0].rstrip(':.')}: {lines[-1]}"
    return " ".join(lines)  # e.g. "Job 7_1 ... with path ... has not produced any output (state: CANCELLED by 0)"


def queued_tasks(job_ids: Sequence[str]) -> set[str] | None:
    """Ids (``<array>_<task>``) of the tasks of ``job_ids`` still in SLURM's queue, or None when ``squeue`` cannot
    be asked (then only submitit decides)."""
    arrays = sorted({str(job_id).split("_")[0] for job_id in job_ids})
    if not arrays:
        return set()
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", ",".join(arrays)], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        # squeue answers "Invalid job id specified" once every job of the list has left the queue
        return set() if "Invalid job id" in out.stderr else None
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def _failed(overrides: Sequence[str], reason: str) -> JobReturn:
    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=TaskFailed(reason))


def _outcome(job: Any, overrides: Sequence[str]) -> JobReturn:
    """The task's JobReturn, or a failed one with the reason in one line (never raises)."""
    try:
        return job.results()[0]
    except Exception as error:  # UncompletedJobError (cancelled, timed out), FailedJobError, unpickling errors
        state = _state(job)
        reason = one_line(error)
        if state and state != "UNKNOWN" and "state:" not in reason:
            reason = f"{reason} (state: {state})"
        return _failed(overrides, reason)


def _state(job: Any) -> str:
    try:
        return str(job.state)
    except Exception:  # noqa: BLE001 (the state is decoration; no accounting is a normal case)
        return ""


class _QuietSacct(logging.Filter):
    """Drops submitit's repeated "Bypassing sacct error" warnings (a cluster without accounting) after saying
    once that the tasks are followed with ``squeue``."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if not self.said:
            self.said = True
            log.info("no SLURM accounting (sacct failed): following the tasks with squeue")
        return False


def wait_for(jobs: Sequence[Any], overrides: Sequence[Sequence[str]], *, poll_s: float = POLL_S,
             lost_after_s: float = LOST_AFTER_S) -> list[JobReturn]:
    """One JobReturn per submitit job, in order, once every task has finished or is gone (see module doc)."""
    returns: list[JobReturn | None] = [None] * len(jobs)
    pending = dict(enumerate(jobs))
    absent_since: dict[int, float] = {}
    noted = time.monotonic()
    quiet = _QuietSacct()
    logging.getLogger("submitit").addFilter(quiet)
    try:
        while pending:
            for index, job in list(pending.items()):
                if job.done():
                    returns[index] = _outcome(job, overrides[index])
                    del pending[index]
            if not pending:
                break
            if quiet.said:  # no accounting: stop asking sacct (each call prints an error); squeue follows the tasks
                _stop_sacct(pending.values())
            queued = queued_tasks([str(job.job_id) for job in pending.values()])
            now = time.monotonic()
            for index, job in list(pending.items()):
                if queued is None or str(job.job_id) in queued:
                    absent_since.pop(index, None)
                    continue
                since = absent_since.setdefault(index, now)
                if job.paths.result_pickle.exists():
                    continue  # done() sees it on the next poll
                if now - since >= lost_after_s:
                    state = _state(job)
                    how = f"state {state}" if state and state != "UNKNOWN" else "no accounting to ask"
                    returns[index] = _failed(overrides[index], f"task {job.job_id} left the queue without a result "
                                                               f"({how})")
                    del pending[index]
            if pending and now - noted >= NOTE_EVERY_S:
                noted = now
                log.info("waiting for %d of %d tasks: %s", len(pending), len(jobs), _names(pending.values()))
            if pending:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        arrays = " ".join(sorted({str(job.job_id).split("_")[0] for job in pending.values()}))
        log.error("submitter stopped; %d tasks still in SLURM: %s (`scancel %s` stops them; or let them finish, "
                  "then run the same command again, or obsbench-collect, for the report)", len(pending),
                  _names(pending.values()), arrays)
        raise
    finally:
        logging.getLogger("submitit").removeFilter(quiet)
    return [r for r in returns if r is not None]


def _stop_sacct(jobs: Any) -> None:
    """Make submitit's watcher skip its ``sacct`` calls (its ``update`` returns at once without a command)."""
    for job in jobs:
        watcher = getattr(job, "watcher", None)
        if watcher is not None and hasattr(watcher, "_make_command"):
            watcher._make_command = lambda: None


def _names(jobs: Any) -> str:
    ids = [str(job.job_id) for job in jobs]
    return ", ".join(ids[:20]) + (f", ... ({len(ids) - 20} more)" if len(ids) > 20 else "")
