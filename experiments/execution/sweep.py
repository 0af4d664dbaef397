"""What a sweep launches, and what it says when a job does not finish.

**Submit only what is missing.** Before launching, every sweep point whose runs can be told in advance (its
kind's ``plan``: `experiments.kinds.Kind`) and are all stored (`ResultStore.has`: results, not ``interrupted``
records) is left out, whatever the launcher — no job, no queue time on a cluster. Their memberships go to
``<sweep dir>/stored/runs.json``, so the end-of-sweep report still covers the whole sweep: a rerun of a
finished sweep launches nothing and reports from the store. Points of kinds that cannot plan (phase diagrams,
robustness grids, ...) are always launched; their jobs skip the cells already stored.

**Failed jobs are one line each.** A job that fails or is cancelled becomes one logged line, and its planned
runs that no task stored get an ``interrupted`` record (status and cause, never counted as stored), so the
report shows them and the next run of the same command computes them; the sweep still reports, then exits
with status 1 and one line saying how to resume.

Used by the ``skip_stored`` sweeper (``hydra_plugins/obsbench_plugins``, `conf/hydra/sweeper/skip_stored.yaml`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from hydra import compose
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from experiments.store import manifest
from experiments.store.results import ResultStore

log = logging.getLogger(__name__)

#: Folder of the sweep dir holding the memberships of the points left out because they are stored.
STORED = "stored"
#: Folder of the sweep dir holding the memberships of jobs that ended without listing their runs.
INCOMPLETE = "incomplete"

#: Failed jobs of the sweep in this process (read by `ExitIfIncomplete` after the report).
failures: list[str] = []


def _compose(config: DictConfig, point: Sequence[str]) -> DictConfig:
    return compose(config_name=config.hydra.job.config_name, overrides=list(config.hydra.overrides.hydra) + list(point))


def _kind_plan(cfg: DictConfig) -> tuple[pd.DataFrame | None, Path | None]:
    """(memberships, results root) of a point's job, or (None, None) when its kind cannot plan."""
    from experiments.execution.runner import results_root
    from experiments.kinds import kind_of

    kind = kind_of(cfg)
    if kind.plan is None:
        return None, None
    return kind.plan(cfg), results_root(cfg)


def plan_points(config: DictConfig, points: Sequence[Sequence[str]]) -> list[tuple[pd.DataFrame | None, Path | None]]:
    """The plan of every point (`_kind_plan`). Points that differ only in an integer seed are composed once."""
    plans = []
    composed: dict[tuple[str, ...], DictConfig] = {}
    for point in points:
        seeds = [o.split("=", 1)[1] for o in point if o.startswith("seed=")]
        shape = tuple(o for o in point if not o.startswith("seed="))
        if len(seeds) == 1 and seeds[0].isdigit() and shape in composed:
            cfg = composed[shape]
            with open_dict(cfg):
                cfg.seed = int(seeds[0])
        else:
            cfg = _compose(config, point)
            if len(seeds) == 1 and seeds[0].isdigit():
                composed[shape] = cfg
        try:
            plans.append(_kind_plan(cfg))
        except ValueError:  # the validator has already passed every point; a plan error just means "launch it"
            plans.append((None, None))
    return plans


def missing_points(config: DictConfig, points: Sequence[Sequence[str]]) -> list[list[str]]:
    """The points to launch; the memberships of the others (all runs stored) are written under
    ``<sweep dir>/stored/``, and how many were left out is logged."""
    plans = plan_points(config, points)
    launch, stored = [], []
    for point, (members, root) in zip(points, plans):
        if members is None or members.empty or not all(ResultStore(root).has(r) for r in members["run_id"]):
            launch.append(list(point))
        else:
            stored.append((members, root))
    if stored:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        by_root: dict[Path, list[pd.DataFrame]] = {}
        for members, root in stored:
            by_root.setdefault(root, []).append(members)
        for number, (root, tables) in enumerate(sorted(by_root.items())):
            folder = sweep_dir / (STORED if number == 0 else f"{STORED}_{number}")
            manifest.write_job_manifest(folder, pd.concat(tables, ignore_index=True), root)
        roots = ", ".join(str(root) for root in sorted(by_root))
        if launch:
            log.info("skipping %d of %d sweep points: all their runs already stored (%s); launching %d", len(stored),
                     len(points), roots, len(launch))
        else:
            log.info("all %d sweep points already stored (%s): nothing to launch; reporting from the store",
                     len(points), roots)
    return launch


def check_returns(config: DictConfig, batch: Sequence[Sequence[str]], returns: Sequence[JobReturn],
                  first_index: int) -> None:
    """Log one line per failed job and record its planned runs that no task stored as ``interrupted``."""
    for offset, (point, ret) in enumerate(zip(batch, returns)):
        if ret.status != JobStatus.FAILED:
            continue
        error = ret._return_value
        from experiments.execution.submitted import one_line

        reason = one_line(error) if isinstance(error, BaseException) else str(error)
        label = " ".join(point)
        log.error("job #%d [%s] did not finish: %s", first_index + offset, label, reason)
        failures.append(f"#{first_index + offset} [{label}]: {reason}")
        try:
            _record_unfinished(config, point, reason, first_index + offset)
        except Exception as exc:  # noqa: BLE001 (the record is a courtesy; never a traceback here)
            log.warning("could not record the runs of job #%d as interrupted: %s", first_index + offset, exc)


def _record_unfinished(config: DictConfig, point: Sequence[str], reason: str, index: int) -> None:
    from experiments.execution import interrupt
    from experiments.execution.runner import NotApplicable, RunSpec, prepare

    cfg = _compose(config, point)
    members, root = _kind_plan(cfg)
    if members is None or members.empty:
        return
    store = ResultStore(root)
    manifest.write_job_manifest(Path(str(config.hydra.sweep.dir)) / INCOMPLETE / str(index), members, root)
    spec = RunSpec.from_config(cfg)
    for rid in members["run_id"]:
        if store.exists(rid) or rid != spec.run_id:
            continue  # the task stored it (result or its own interrupted record)
        try:
            problem, solver = prepare(spec)
        except NotApplicable:
            continue
        stop = interrupt.Interrupted(f"job ended without storing this run: {reason}")
        result = interrupt.interrupted_result(problem, interrupt.Progress(), stop, 0.0)
        from experiments.store.results import tidy_rows

        frame = tidy_rows(result.trace, run=rid, experiment=spec.experiment, problem=problem.name,
                          solver=solver.name, seed=spec.seed, problem_params=problem.params,
                          solver_params=solver.get_params(), status=result.status,
                          message=f"{stop.cause}; not a result: a rerun recomputes it")
        store.write(rid, frame)


class ExitIfIncomplete(Callback):
    """Hydra callback, after the report (listed before ``report``: Hydra calls ``on_multirun_end`` in reverse):
    when jobs of the sweep did not finish, one line and exit status 1."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if failures:
            count = len(failures)
            failures.clear()
            release = getattr(sys.stderr, "release", None)  # `obsbench` holds stderr until a job starts
            if callable(release):
                release()
            sys.stderr.write(f"obsbench: error: {count} job(s) of the sweep did not finish (one line each above; "
                             f"their runs are recorded as interrupted): run the same command again to compute "
                             f"them\n")
            raise SystemExit(1)
