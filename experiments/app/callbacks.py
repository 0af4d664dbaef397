"""Hydra callbacks: sweep validation and the end-of-sweep report (summary table and figure over every job of the
multirun).

A report reads the runs that belong to its sweep, by run id, each labelled with the experiment and part it plays
in the sweep (`experiments.store.manifest`): the jobs' manifests say which, never the ``experiment`` under which
a stored run was first computed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from hydra import compose
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.execution.runner import results_root
from experiments.store import manifest
from experiments.store.manifest import MANIFEST, sweep_members  # noqa: F401  (re-exported)
from experiments.store.results import ResultStore

log = logging.getLogger(__name__)


def write_manifest(job_dir: Path, run_ids: list[str]) -> None:
    """Make sure the job's manifest lists exactly ``run_ids``.

    A job run through its kind (`experiments.kinds.Kind.run`) has already written its manifest, with the part
    each run plays; this writes one only where none lists these runs (every run then plays the sweep's
    experiment, without a part)."""
    path = Path(job_dir) / MANIFEST
    if path.is_file() and set(manifest.read_manifest(path)["run_id"]) == set(run_ids):
        return
    manifest.write_job_manifest(Path(job_dir), manifest.default_members(run_ids))


def sweep_run_ids(sweep_dir: Path) -> list[str]:
    """Every run id recorded by the jobs of a sweep."""
    return list(dict.fromkeys(sweep_members(sweep_dir)["run_id"]))


def report_members(cfg: DictConfig, runs: list[str] | pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """The memberships a report reads: ``runs`` as a membership table (a sweep's, `sweep_members`), or a list of
    run ids whose parts are looked up in the manifest of ``out_dir`` (a single job's report); an experiment
    left open (None) is the reporting sweep's ``experiment.name``."""
    if isinstance(runs, pd.DataFrame):
        members = runs
    else:
        ids = list(dict.fromkeys(runs))
        path = Path(out_dir) / MANIFEST
        listed = manifest.read_manifest(path) if path.is_file() else manifest.empty()
        listed = listed[listed["run_id"].isin(ids)]
        missing = [rid for rid in ids if rid not in set(listed["run_id"])]
        members = pd.concat([listed, manifest.default_members(missing)], ignore_index=True)
    members = manifest.canonical(members)
    return members.assign(experiment=members["experiment"].where(members["experiment"].notna(),
                                                                 str(cfg.experiment.name)))


def write_report(cfg: DictConfig, runs: list[str] | pd.DataFrame, out_dir: Path) -> list[Path]:
    """Load the rows of the sweep's runs (`report_members`; `experiments.store.manifest.load_members` labels them
    with the experiment and part they play in this sweep) and call the experiment's report function; log where
    outputs went."""
    members = report_members(cfg, runs, out_dir)
    if members.empty:
        return []  # e.g. experiment=constants, which reports from its job
    frame = manifest.load_members(results_root(cfg), members)
    if frame.empty:
        log.warning("no results to report")
        return []
    from experiments.kinds import kind_of  # the kinds import plots and solvers: only when a report is due

    paths = kind_of(cfg).report(frame, out_dir, cfg)
    log.info("results: %s (%d runs)", results_root(cfg), frame["run_id"].nunique())
    for path in paths:
        log.info("figure: %s", path)
    return paths


def sweep_points(config: DictConfig) -> list[list[str]]:
    """The job overrides of a multirun, expanded exactly as Hydra's basic sweeper expands them
    (sweeper params from the config first, command-line overrides win)."""
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    overrides = parser.parse_overrides(params + list(config.hydra.overrides.task))
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


class ValidateSweep(Callback):
    """Before any job of a multirun starts, compose every sweep point and run its experiment's validator
    (the kind's ``validate``, `experiments.kinds.KINDS`): one invalid point stops the sweep
    with a one-line message naming it, and nothing runs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        checked: set[str] = set()
        points = sweep_points(config)
        composed: set[tuple[str, ...]] = set()
        for job in points:
            # Points that differ only in the seed share problem and solver settings: compose one of them.
            shape = tuple(o for o in job if not o.startswith("seed="))
            seeds = [o.split("=", 1)[1] for o in job if o.startswith("seed=")]
            if shape in composed and all(s.isdigit() for s in seeds):
                continue
            composed.add(shape)
            cfg = compose(config_name=config.hydra.job.config_name,
                          overrides=list(config.hydra.overrides.hydra) + job)
            try:
                from experiments.kinds import kind_of

                kind_of(cfg).validate(cfg, checked)
            except ValueError as exc:
                sys.stderr.write(f"sweep point [{' '.join(job)}]: {exc}\n")
                raise SystemExit(2) from None
        log.info("validated %d sweep points (%d distinct configurations)", len(points), len(checked))


class SweepReport(Callback):
    """At the end of a multirun, report over all of its jobs (works with any launcher: each job leaves its
    manifest in its output folder, on the shared file system, and the report merges them), then delete the
    temporary files that killed writers left in the results root more than an hour ago."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        write_report(config, sweep_members(sweep_dir), sweep_dir)
        ResultStore(results_root(config)).remove_stale_temporaries()
