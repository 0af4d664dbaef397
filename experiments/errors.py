"""The one error boundary of the command-line tools: every failure ends as one line on stderr and an exit status.

Code that detects a problem raises an ordinary exception (``ValueError`` for bad input, ``OSError`` from the file
system, anything else from a bug or a library); the places where the tools hand control to Hydra (sweep
validation, a job, the end-of-sweep report) turn it into a `Refusal` with `refusal`, and the entry points
(``obsbench``, ``obsbench-collect``) print it with `boundary`. `describe` is the only place that decides how an
exception reads in one line.

Exit statuses: 2 bad input refused before any work, 1 a failure while working (e.g. a full disk), 130 interrupted
(Ctrl-C). ``hydra.verbose=true`` or ``HYDRA_FULL_ERROR=1`` lets the traceback through instead.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TextIO

#: What an interrupted command prints (exit status 130, as a shell reports a SIGINT).
INTERRUPTED = "interrupted; rerun the same command to resume"
BAD_INPUT, FAILED, INTERRUPTED_STATUS = 2, 1, 130


class Refusal(SystemExit):
    """A failure already described in one line; raised through Hydra (a ``SystemExit`` passes its callback and
    job wrappers untouched) and printed once by `boundary`."""

    def __init__(self, message: str, code: int = BAD_INPUT):
        super().__init__(code)
        self.message = message
        self.args = (message, code)  # pickles (joblib / submitit workers) back into a Refusal


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or _first_line(str(exc)) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device writing {where}: the runs already stored are kept; free some space "
                "and rerun the same command to resume")
    if isinstance(exc, FileExistsError) and where and not Path(where).is_dir():
        return f"{where} is a file, not a folder"
    return f"{where}: {reason[:1].lower()}{reason[1:]}" if where else reason


def _config_error(exc: BaseException) -> str:
    """Hydra / OmegaConf errors: their first line, joined with their cause's (e.g. the missing interpolation key),
    without the ``full_key:`` / ``object_type`` detail lines."""
    parts = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 3:
        line = _first_line(str(seen)).rstrip(".")
        if line and line not in parts:
            parts.append(line)
        seen = seen.__cause__
    return "; ".join(parts) or type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line for any exception: the message of input errors, the file and reason of file-system errors, the
    configuration error of Hydra, and for anything unexpected its type, message and where it was raised."""
    module = type(exc).__module__ or ""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, Refusal):
        return exc.message
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, MemoryError):
        return f"out of memory: {_first_line(str(exc)) or 'an allocation failed'}"
    if module.startswith(("hydra", "omegaconf")):
        return _config_error(exc)
    if isinstance(exc, ValueError):
        return _first_line(str(exc)) or type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = _first_line(str(exc))
    return (f"{type(exc).__name__}{': ' + message if message else ''}{where}; "
            "rerun with HYDRA_FULL_ERROR=1 for the traceback")


def wants_traceback(hydra_verbose: object = False) -> bool:
    """Whether the user asked for tracebacks: ``hydra.verbose=true`` or ``HYDRA_FULL_ERROR=1``."""
    return bool(hydra_verbose) or os.environ.get("HYDRA_FULL_ERROR") == "1"


def stops_sweep(exc: BaseException) -> bool:
    """Whether a job's exception must stop the whole sweep (every other job would fail the same way): bad input
    found only while running, a file system that cannot take the results (full disk, read-only, permissions),
    memory exhausted. Other failures are the job's own: the sweeper reports them and goes on."""
    return isinstance(exc, (ValueError, OSError, MemoryError, Refusal))


def refusal(exc: BaseException, context: str = "", code: int | None = None) -> Refusal:
    """``exc`` as a `Refusal` (``context`` prefixed, e.g. the sweep point; a `Refusal` passes unchanged): status 2
    for bad input (``ValueError``, Hydra / OmegaConf configuration errors), 1 otherwise, unless ``code``."""
    if isinstance(exc, Refusal):
        return exc
    if code is None:
        config_error = (type(exc).__module__ or "").startswith(("hydra", "omegaconf"))
        code = BAD_INPUT if isinstance(exc, ValueError) or config_error else FAILED
    message = describe(exc)
    return Refusal(f"{context}: {message}" if context else message, code)


@contextmanager
def boundary(prog: str, *, verbose: bool = False, stream: TextIO | None = None) -> Iterator[None]:
    """The outermost handler of an entry point: a `Refusal` or any exception becomes ``<prog>: error: <line>``
    (status 2 or 1), Ctrl-C ``<prog>: interrupted; rerun the same command to resume`` (status 130). With
    ``verbose`` unexpected exceptions and interruptions keep their traceback."""
    def say(line: str) -> None:
        out = stream if stream is not None else sys.stderr
        out.write(f"{prog}: {line}\n")
        out.flush()

    try:
        yield
    except Refusal as stop:
        say(f"error: {stop.message}")
        raise SystemExit(stop.code) from None
    except KeyboardInterrupt:
        if verbose:
            raise
        # joblib warns, as it closes an interrupted pool (possibly after this line), that it cancelled the tasks
        # still running: that is what Ctrl-C asked for, and the one line below already says so
        warnings.filterwarnings("ignore", message=r".*tasks which were still being processed by the workers",
                                category=UserWarning)
        say(INTERRUPTED)
        raise SystemExit(INTERRUPTED_STATUS) from None
    except SystemExit:
        raise
    except Exception as exc:
        if verbose:
            raise
        stop = refusal(exc)
        say(f"error: {stop.message}")
        raise SystemExit(stop.code) from None
