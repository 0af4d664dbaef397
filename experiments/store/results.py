"""The result store: one tidy table, one row per (run, iteration), one parquet file per run.

Layout: ``<root>/<run_id>.parquet``. A file is written to a temporary name in the same folder and renamed
into place (atomic on POSIX), so a killed sweep never leaves a half-written result and a rerun skips the
runs already present. `load` concatenates every run into one DataFrame; plots and summaries read only that.

A run is stored once and shared by every sweep that needs it: its id hashes what it computes (problem + solver +
seed; phase-diagram and robustness cells add their settings and experiment name), so experiments share runs. The
``experiment`` column of a stored row is the experiment under which the run was *first computed* (provenance,
like ``created_at``), never rewritten and never used to select or group runs: a sweep's report reads the runs
its jobs list in their manifests, labelled with the experiment and part they play in that sweep
(`experiments.store.manifest`), and ``obsbench-collect`` counts a run under every experiment that used it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from experiments.store.status import is_final

log = logging.getLogger(__name__)

#: Columns every run has, in order; ``p_<param>`` and ``s_<param>`` columns follow the identity columns.
TRACE_COLUMNS = ("iteration", "time_s", "objective", "distance", "rel_error", "support_recall", "support_size",
                 "step_size", "bound", "bound_note")
#: ``experiment``: the experiment that first computed the run (provenance; see the module docstring).
IDENTITY_COLUMNS = ("run_id", "experiment", "problem", "solver", "seed")
OUTCOME_COLUMNS = ("status", "message")
#: f(x)/f_best − 1 against the best k-subset objective, and how f_best was obtained (`experiments.store.reference`).
ORACLE_COLUMNS = ("objective_gap", "oracle")
#: The second table of the store: rows of a pruning run (`experiments.kinds.pruning`), one per (method, sparsity,
#: I-OBS rounds, split, metric[, layer]) with its ``value``; marked by ``table = "pruning"`` (rows stored before
#: the marker existed are recognised by having a ``metric`` and no ``iteration``). Every other row is a solver
#: trace row (``table`` absent or ``"trace"``).
PRUNING_COLUMNS = ("model", "method", "sparsity", "iterations", "split", "metric", "value", "layer")
TABLES = ("trace", "pruning")
#: Age (seconds) after which a temporary file is a leftover of a killed writer (`ResultStore.remove_stale_temporaries`).
STALE_TEMPORARY_S = 3600.0
PROVENANCE_COLUMNS = ("obsbench_version", "git_sha", "numpy_version", "scipy_version", "created_at")


def run_id(problem: Mapping[str, Any], solver: Mapping[str, Any], seed: int, **extra: Any) -> str:
    """A stable 16-hex-digit hash of the resolved problem and solver configuration and the seed.

    Keys are sorted, so the id does not depend on the order in which parameters were given; ``extra``
    (e.g. a phase-diagram cell) enters the hash the same way.
    """
    payload = json.dumps({"problem": problem, "solver": solver, "seed": seed, **extra}, sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def provenance() -> dict[str, str]:
    """Version stamps recorded with every row (computed once per process)."""
    from importlib import metadata

    import numpy
    import scipy

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    try:
        version = metadata.version("obsbench")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return dict(obsbench_version=version, git_sha=sha or "unknown", numpy_version=numpy.__version__,
                scipy_version=scipy.__version__)


def tidy_rows(trace: Iterable[Mapping[str, Any]], *, run: str, experiment: str, problem: str, solver: str,
              seed: int, problem_params: Mapping[str, Any], solver_params: Mapping[str, Any], status: str,
              message: str, reference: tuple[float, str] | None = None) -> pd.DataFrame:
    """Assemble the schema of design.md from a solver trace and the run's identity; ``reference`` is
    (f_best, how) for the ``objective_gap`` / ``oracle`` columns (NaN / "" without one)."""
    frame = pd.DataFrame(list(trace), columns=list(TRACE_COLUMNS))
    f_best, how = reference if reference is not None else (float("nan"), "")
    with np.errstate(all="ignore"):
        gap = frame["objective"].astype(float) / f_best - 1.0 if f_best > 0 else np.nan
    frame = frame.assign(objective_gap=gap, oracle=how)
    identity = dict(run_id=run, experiment=experiment, problem=problem, solver=solver, seed=int(seed))
    params = {f"p_{k}": _scalar(v) for k, v in problem_params.items()}
    params.update({f"s_{k}": _scalar(v) for k, v in solver_params.items()})
    stamp = dict(status=status, message=message, **provenance(),
                 created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    head = pd.DataFrame([{**identity, **params}] * len(frame))
    tail = pd.DataFrame([stamp] * len(frame))
    return pd.concat([head, frame, tail], axis=1)


def _scalar(value: Any) -> Any:
    """Parquet-friendly parameter value: lists and mappings become JSON strings."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return value


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process's umask (read from /proc where possible: setting it to read it is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(target: Path, write: Callable[[BinaryIO], object]) -> Path:
    """``write(handle)`` into a temporary file ``.<name>.*.tmp`` beside ``target``, fsync, then rename it over
    ``target``: readers see the old file or the complete new one, never a partial one; on any failure the
    temporary file is removed (a killed writer leaves it behind: `ResultStore.remove_stale_temporaries`). The
    file gets the permissions of any file the user creates (0666 less the umask; a temporary file is 0600)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:  # e.g. a full disk: the error names the file being written
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(target)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


class ResultStore:
    """A folder of per-run parquet files.

    Parameters
    ----------
    root : path
        The results root (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, run: str) -> Path:
        return self.root / f"{run}.parquet"

    def has(self, run: str) -> bool:
        """Whether the run is already stored (a complete file: only complete files ever get the name; one
        damaged afterwards, without parquet's ``PAR1`` marks at both ends, counts as not stored)."""
        # a run ended by the scheduler is kept as a record (status `interrupted`) but is no result
        return is_parquet(self.path(run)) and is_final(self.path(run))

    def exists(self, run: str) -> bool:
        """Whether a file for the run is stored, result or `interrupted` record (what reports read)."""
        return is_parquet(self.path(run))

    def write(self, run: str, frame: pd.DataFrame) -> Path:
        """Write atomically (`atomic_write`). Two writers of the same run id produce identical content, so the
        last rename wins harmlessly."""
        return atomic_write(self.path(run), lambda handle: frame.to_parquet(handle, index=False))

    def read(self, run: str) -> pd.DataFrame:
        return read_parquet_file(self.path(run))

    def read_valid(self, run: str) -> pd.DataFrame | None:
        """The stored rows of ``run``, or None (with a one-line warning naming the file) when the file cannot
        be read or is not an obsbench result file; an unreadable file is moved aside (``.corrupt``), so the
        run counts as not stored and the next sweep computes it again."""
        return read_result_file(self.path(run))

    def solution_path(self, run: str) -> Path:
        return self.root / "solutions" / f"{run}.npy"

    def write_solution(self, run: str, x: np.ndarray) -> Path:
        """Keep a run's final point (for figures that show it, e.g. recovered images), atomically."""
        return atomic_write(self.solution_path(run), lambda handle: np.save(handle, np.asarray(x)))

    def read_solution(self, run: str) -> np.ndarray | None:
        """The stored final point of a run, or None if it was not kept."""
        path = self.solution_path(run)
        return np.load(path) if path.is_file() else None

    def remove_stale_temporaries(self, older_than_s: float = STALE_TEMPORARY_S) -> int:
        """Delete temporary files (``.<run>.*.tmp``) last written more than ``older_than_s`` seconds ago:
        leftovers of writers killed between creating and renaming them (e.g. ``kill -9``). They are never
        read; a live writer's file is seconds old, so a concurrent sweep's writes are not touched. Returns
        how many were removed."""
        removed = 0
        deadline = time.time() - older_than_s
        for folder in (self.root, self.root / "solutions", self.root / "manifests"):
            for path in folder.glob(".*.tmp") if folder.is_dir() else ():
                try:
                    if path.stat().st_mtime < deadline:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:  # another process removed or renamed it meanwhile
                    continue
        if removed:
            log.info("removed %d stale temporary files under %s", removed, self.root)
        return removed

    def runs(self) -> list[str]:
        """Ids of the stored runs (temporary files are ignored)."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.parquet"))


def load(root: str | os.PathLike[str], runs: Iterable[str] | None = None) -> pd.DataFrame:
    """All stored rows under ``root`` (or only ``runs``) as one DataFrame, as stored (``experiment`` = the
    experiment that first computed each run); empty if there are none. A sweep's view of its runs is
    `experiments.store.manifest.load_members`."""
    store = ResultStore(root)
    selected = store.runs() if runs is None else [r for r in dict.fromkeys(runs) if store.exists(r)]
    frames = [store.read_valid(r) for r in selected]
    frames = [f for f in frames if f is not None and not f.empty]
    if not frames:
        return pd.DataFrame(columns=[*IDENTITY_COLUMNS, *TRACE_COLUMNS, *OUTCOME_COLUMNS])
    return pd.concat(frames, ignore_index=True)


#: Columns without which a parquet file under a results root is not a result file of this store.
REQUIRED_COLUMNS = ("run_id", "experiment")
_PARQUET_MARK = b"PAR1"


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is a file with parquet's marks at both ends (cheap: reads 8 bytes)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(-4, os.SEEK_END)
            return head == _PARQUET_MARK and handle.read(4) == _PARQUET_MARK
    except OSError:  # missing, a folder, shorter than 4 bytes, unreadable
        return False


_warned: set[tuple[str, int]] = set()


def _warn_once(path: Path, message: str) -> None:
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        key = (str(path), 0)
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


def read_parquet_file(path: Path) -> pd.DataFrame:
    """One parquet file as a DataFrame: what ``pd.read_parquet`` returns, read by pyarrow on the calling thread —
    the files of a grid are small (one cell each), and its thread pool cost more than the read (5.5 against
    3.3 ms per cell file; a report reads every cell)."""
    return pq.read_table(path, use_threads=False).to_pandas()


def read_result_file(path: Path) -> pd.DataFrame | None:
    """The rows of one stored run, or None with a one-line warning naming the file: an unreadable (corrupt,
    truncated) file is renamed ``<name>.corrupt`` so that its run is computed again by the next sweep; a parquet
    file of another schema (not written by this store) is left where it is and skipped."""
    try:
        before = path.stat()
        frame = read_parquet_file(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # pyarrow raises several kinds (ArrowInvalid, OSError, ...) for a damaged file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        aside = path.with_name(path.name + ".corrupt")
        try:
            if path.stat().st_ino == before.st_ino:  # not replaced by a concurrent writer meanwhile
                os.replace(path, aside)
                log.warning("skipped unreadable result file %s (%s); moved to %s, its run is computed again by "
                            "the next sweep", path, reason, aside.name)
                return None
        except OSError:
            pass
        _warn_once(path, f"skipped unreadable result file {path} ({reason}); delete it to compute its run again")
        return None
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing or ("iteration" not in frame.columns and "metric" not in frame.columns):
        _warn_once(path, f"skipped {path}: not an obsbench result file (no column "
                         f"{(missing or ['iteration'])[0]!r})")
        return None
    return frame


def is_pruning_row(frame: pd.DataFrame) -> pd.Series:
    """Which rows belong to the pruning table (see `PRUNING_COLUMNS`)."""
    if "table" in frame:
        marked = frame["table"].eq("pruning")
    else:
        marked = pd.Series(False, index=frame.index)
    if "metric" in frame:
        iteration = frame["iteration"] if "iteration" in frame else pd.Series(np.nan, index=frame.index)
        marked |= frame["metric"].notna() & iteration.isna()
    return marked


def split_tables(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(solver trace rows, pruning rows) of a loaded frame; each keeps only the columns it uses."""
    pruning = is_pruning_row(frame)
    traces, prunings = frame[~pruning], frame[pruning]
    return traces.dropna(axis=1, how="all"), prunings.dropna(axis=1, how="all")


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last recorded iteration of every solver run (pruning rows, which have no iterations, are left out).

    A run is a run id, refined by the columns a frame has of ``part`` (a report frame where one stored run plays
    two parts of a sweep: once per part), ``trial`` (a phase-diagram or robustness cell stores one final row per
    trial under one run id) and ``solver`` (a robustness cell holds every solver)."""
    frame = frame[~is_pruning_row(frame)] if not frame.empty else frame
    if frame.empty or "iteration" not in frame:
        return frame.iloc[0:0]
    keys = ["run_id", *[column for column in ("part", "trial", "solver") if column in frame]]
    ordered = frame.sort_values([*keys, "iteration"], kind="stable")
    return ordered.groupby(keys, sort=False, dropna=False).tail(1)
