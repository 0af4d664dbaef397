"""Sweep membership: which stored runs a report reads, and the part each plays in its sweep.

**The rule.** A report reads the runs that belong to its sweep — every run id a job of the sweep planned,
whether the job computed it or found it already stored — each labelled with the experiment (and part) it plays
in *this* sweep. No report, summary, figure or collector grouping selects rows by the ``experiment`` column of
a stored row.

**What ``experiment`` means in a stored row.** A run is stored once, under an id that hashes what it computes
(problem + solver + seed; `experiments.store.results.run_id`), and is never rewritten. Its ``experiment``
column names the experiment under which it was *first computed*: provenance, like ``created_at``. When another
experiment's sweep needs the same run (a plain sweep and ``experiment=compare`` share convergence runs;
``experiment=compare`` and ``experiment=scaling`` share scaling runs), it reuses the stored file and records
the run in its own manifest; the stored row keeps its first label. A run's memberships are the manifests that
reference it.

**Manifests.** Every job writes one small file, ``<job output dir>/runs.json`` (atomically), listing its run
ids with the experiment and part each plays in the job: ``experiment`` is the name the run has in this sweep
(``compare_convergence`` for the convergence part of ``experiment=compare``, else the job's
``experiment.name``), ``part`` the part of a multi-part kind (empty otherwise). The end-of-sweep report merges
the manifests of all jobs (`sweep_members`), so it works with launchers that run jobs in separate processes or
machines, and a rerun of a half-finished sweep (whose jobs skip stored runs but still list them) reports every
run. A copy of each job's manifest goes to ``<results root>/manifests/<content hash>.json``, so that
``obsbench-collect`` can group a root by the memberships of its runs (`stored_members`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from experiments.store.results import IDENTITY_COLUMNS, OUTCOME_COLUMNS, TRACE_COLUMNS, ResultStore, atomic_write

log = logging.getLogger(__name__)

#: File name of a job's manifest, in the job's output folder.
MANIFEST = "runs.json"
#: Folder under the results root holding a copy of every job manifest (content-addressed).
FOLDER = "manifests"
#: Columns of a membership table: one row per (run, experiment, part) of a sweep.
COLUMNS = ("run_id", "experiment", "part")
FORMAT = 2


def empty() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS})


def canonical(members: pd.DataFrame) -> pd.DataFrame:
    """Memberships without duplicates, in a canonical order (run id, experiment, part)."""
    if members.empty:
        return empty()
    members = members[list(COLUMNS)].astype({"part": str})
    members = members.drop_duplicates().sort_values(list(COLUMNS), na_position="first", kind="stable")
    return members.reset_index(drop=True)


def job_members(frame: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """The memberships of one job's rows: a frame with a ``part`` column says (in its ``experiment`` and ``part``
    columns) which part each run plays (`experiments.kinds.compare`); otherwise every run plays ``experiment``,
    the job's experiment name, whatever its stored ``experiment`` says."""
    if frame.empty or "run_id" not in frame:
        return empty()
    if "part" in frame:
        members = frame[list(COLUMNS)]
    else:
        members = frame[["run_id"]].assign(experiment=experiment, part="")
    return canonical(members)


def default_members(run_ids: Iterable[str], experiment: str | None = None) -> pd.DataFrame:
    """Every run in ``experiment`` (None: the reporting sweep's experiment), no part."""
    ids = list(dict.fromkeys(run_ids))
    return canonical(pd.DataFrame({"run_id": ids, "experiment": [experiment] * len(ids), "part": [""] * len(ids)}))


def _records(members: pd.DataFrame) -> list[dict]:
    return [{"run_id": str(r.run_id), "experiment": None if pd.isna(r.experiment) else str(r.experiment),
             "part": str(r.part)} for r in canonical(members).itertuples(index=False)]


def write_job_manifest(job_dir: Path, members: pd.DataFrame, root: Path | None = None) -> Path:
    """Write a job's manifest atomically into ``job_dir``; with ``root``, also its content-addressed copy under
    ``<root>/manifests/`` (identical jobs share one copy, so reruns add no files)."""
    records = _records(members)
    payload = {"format": FORMAT, "results": str(root) if root is not None else None, "runs": records}
    path = atomic_write(Path(job_dir) / MANIFEST, lambda handle: handle.write(json.dumps(payload).encode()))
    if root is not None and records:
        text = json.dumps({"format": FORMAT, "runs": records}, sort_keys=True)
        copy = Path(root) / FOLDER / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
        if not copy.is_file():
            atomic_write(copy, lambda handle: handle.write(text.encode()))
    return path


def read_manifest(path: Path) -> pd.DataFrame:
    """The memberships listed in a manifest; a manifest of the first format (a bare list of run ids) gives
    ``experiment`` None (the reporting sweep's experiment) and no part."""
    payload = json.loads(Path(path).read_text())
    if isinstance(payload, list):
        return default_members(payload)
    records = payload.get("runs", [])
    if not records:
        return empty()
    return canonical(pd.DataFrame.from_records(records, columns=list(COLUMNS)))


def _readable_manifest(path: Path) -> pd.DataFrame | None:
    """`read_manifest`, or None with a one-line warning naming a file that cannot be read (damaged, foreign)."""
    try:
        return read_manifest(path)
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        log.warning("skipped unreadable manifest %s (%s)", path, str(exc).splitlines()[0] if str(exc) else
                    type(exc).__name__)
        return None


def sweep_members(sweep_dir: Path) -> pd.DataFrame:
    """The memberships of a sweep: every job manifest under ``sweep_dir`` merged (a run listed by several jobs
    in the same role counts once)."""
    tables = [read_manifest(path) for path in sorted(Path(sweep_dir).glob(f"**/{MANIFEST}"))]
    tables = [table for table in tables if not table.empty]
    return canonical(pd.concat(tables, ignore_index=True)) if tables else empty()


def stored_members(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Every membership recorded under a results root (the copies of the job manifests of every sweep)."""
    folder = Path(root) / FOLDER
    tables = [_readable_manifest(path) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    tables = [table for table in tables if table is not None and not table.empty]
    return canonical(pd.concat(tables, ignore_index=True)) if tables else empty()


def load_members(root: str | os.PathLike[str], members: pd.DataFrame) -> pd.DataFrame:
    """The stored rows of every membership, as the sweep sees them: ``experiment`` is the experiment the run
    plays in the sweep (not the one that first computed it) and ``part`` its part. A run with two roles appears
    once per role; runs not stored (e.g. skipped as not applicable) are left out."""
    store = ResultStore(root)
    cache: dict[str, pd.DataFrame | None] = {}
    frames = []
    for member in canonical(members).itertuples(index=False):
        if member.run_id not in cache:
            cache[member.run_id] = store.read_valid(member.run_id) if store.exists(member.run_id) else None
        rows = cache[member.run_id]
        if rows is None or rows.empty:
            continue
        rows = rows.copy()
        rows["experiment"] = member.experiment
        rows.insert(rows.columns.get_loc("experiment") + 1, "part", member.part)
        frames.append(rows)
    if not frames:
        return pd.DataFrame(columns=[*IDENTITY_COLUMNS, "part", *TRACE_COLUMNS, *OUTCOME_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def experiment_labels(frame: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, experiment) for the runs of ``frame``: the experiment that first computed it (its stored
    ``experiment``) and every experiment whose sweep referenced it (``members``)."""
    if frame.empty:
        return pd.DataFrame({"run_id": pd.Series(dtype=object), "experiment": pd.Series(dtype=object)})
    stored = frame[["run_id", "experiment"]].drop_duplicates()
    referenced = members.loc[members["run_id"].isin(stored["run_id"]) & members["experiment"].notna(),
                             ["run_id", "experiment"]]
    labels = pd.concat([stored, referenced], ignore_index=True).dropna().drop_duplicates()
    return labels.sort_values(["run_id", "experiment"], kind="stable").reset_index(drop=True)
