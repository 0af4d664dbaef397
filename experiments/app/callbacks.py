"""Hydra callbacks: the end-of-sweep report (summary table and figure over every job of the multirun)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from hydra import compose
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.store.results import ResultStore, load
from experiments.execution.runner import results_root

log = logging.getLogger(__name__)

MANIFEST = "runs.json"


def write_manifest(job_dir: Path, run_ids: list[str]) -> None:
    """Record which stored runs a job produced, so the sweep report can find exactly this sweep's rows."""
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / MANIFEST).write_text(json.dumps(sorted(set(run_ids))))


def sweep_run_ids(sweep_dir: Path) -> list[str]:
    """Every run id recorded by the jobs of a sweep."""
    ids: list[str] = []
    for manifest in sorted(sweep_dir.glob(f"**/{MANIFEST}")):
        ids.extend(json.loads(manifest.read_text()))
    return ids


def write_report(cfg: DictConfig, run_ids: list[str], out_dir: Path) -> list[Path]:
    """Load the rows of ``run_ids`` and call the experiment's report function; log where outputs went."""
    if not run_ids:
        return []  # e.g. experiment=constants, which reports from its job
    frame = load(results_root(cfg), run_ids)
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
    """At the end of a multirun, report over all of its jobs (works with any launcher: jobs leave manifests
    in their output folders, which live on the shared file system), then delete the temporary files that
    killed writers left in the results root more than an hour ago."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        write_report(config, sweep_run_ids(sweep_dir), sweep_dir)
        ResultStore(results_root(config)).remove_stale_temporaries()
