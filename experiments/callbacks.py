"""Hydra callbacks: the end-of-sweep report (summary table and figure over every job of the multirun)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.utils import get_method
from omegaconf import DictConfig

from experiments.results import load
from experiments.runner import results_root

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
    frame = load(results_root(cfg), run_ids)
    if frame.empty:
        log.warning("no results to report")
        return []
    paths = get_method(cfg.experiment.report)(frame, out_dir, cfg)
    log.info("results: %s (%d runs)", results_root(cfg), frame["run_id"].nunique())
    for path in paths:
        log.info("figure: %s", path)
    return paths


class SweepReport(Callback):
    """At the end of a multirun, report over all of its jobs (works with any launcher: jobs leave manifests
    in their output folders, which live on the shared file system)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        write_report(config, sweep_run_ids(sweep_dir), sweep_dir)
