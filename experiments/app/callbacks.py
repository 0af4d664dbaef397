"""Hydra callbacks: sweep validation and the end-of-sweep report (summary table and figure over every job of the
multirun).

A report reads the runs that belong to its sweep, by run id, each labelled with the experiment and part it plays
in the sweep (`experiments.store.manifest`): the jobs' manifests say which, never the ``experiment`` under which
a stored run was first computed.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
from hydra import compose
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from experiments import errors
from experiments.execution import preflight
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


def overrides_of(config: DictConfig, which: str) -> list[str]:
    """The command-line overrides (``task`` or ``hydra``) as typed: an interpolation such as ``problem.m=${x}``
    stays text (iterating the config node would resolve it, and fail outside any job)."""
    return [str(o) for o in OmegaConf.to_container(config.hydra.overrides[which], resolve=False)]


def sweep_points(config: DictConfig) -> list[list[str]]:
    """The job overrides of a multirun, expanded exactly as Hydra's basic sweeper expands them
    (sweeper params from the config first, command-line overrides win)."""
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    overrides = parser.parse_overrides(params + overrides_of(config, "task"))
    return [list(job) for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def _source(key: str, variable: str, raw: Any, config: DictConfig) -> str:
    """How a path setting reads in a message: the environment variable when it came from there."""
    given = any(o.startswith(f"{key}=") for o in overrides_of(config, "task"))
    return variable if not given and os.environ.get(variable) == str(raw) else key


def check_folders(config: DictConfig, points: list[DictConfig]) -> None:
    """The results root of every point and Hydra's output folder can be created and written (a probe file,
    removed after), before any work. The last check of a run: if one folder is refused, the folders the probes
    made are removed again (nothing is left behind); if all pass, they stay for the run (`writable_folder`)."""
    made: list[Path] = []
    try:
        for raw in dict.fromkeys(str(cfg.paths.results) for cfg in points):
            preflight.writable_folder(raw, _source("paths.results", "OBSBENCH_RESULTS", raw, config), made)
        multirun = config.hydra.mode == RunMode.MULTIRUN
        out_dir = str(config.hydra.sweep.dir if multirun else config.hydra.run.dir)
        outputs = str(config.paths.outputs)
        if Path(out_dir).is_relative_to(outputs):
            preflight.writable_folder(outputs, _source("paths.outputs", "OBSBENCH_OUTPUTS", outputs, config), made)
        preflight.writable_folder(out_dir, "hydra.sweep.dir" if multirun else "hydra.run.dir", made)
    except Exception:
        preflight.remove_folders(made)
        raise


def check_launcher(config: DictConfig) -> None:
    """Launcher settings that would fail only once the sweep folder exists (joblib's ``n_jobs``)."""
    launcher = config.hydra.get("launcher") or {}
    if "n_jobs" in launcher:
        n_jobs = launcher.n_jobs
        if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0):
            raise ValueError(f"hydra.launcher.n_jobs={n_jobs!r} must be a non-zero integer (-1: every core)")


def validate_point(cfg: DictConfig, checked: set[str]) -> None:
    """One composed job config: integers the store can hold, then its kind's validator (problem and solver
    built and cross-checked; the memory they need estimated first)."""
    from experiments.kinds import kind_of

    preflight.check_integers(cfg.seed, "seed")
    for group in ("problem", "solver", "experiment"):
        if group in cfg:
            preflight.check_integers(OmegaConf.to_container(cfg[group], resolve=True), group)
    kind_of(cfg).validate(cfg, checked)


def _stop(config: DictConfig, exc: BaseException, context: str = "", code: int | None = None) -> errors.Refusal:
    """The one-line refusal of an exception raised inside a callback (whose other exceptions Hydra would turn
    into a warning and go on); with ``hydra.verbose`` the traceback is printed first."""
    if not isinstance(exc, errors.Refusal) and errors.wants_traceback(config.hydra.get("verbose")):
        traceback.print_exception(exc)
    return errors.refusal(exc, context, code)


class ValidateSweep(Callback):
    """Before any job starts (and before Hydra creates its output folder), compose every sweep point and run
    its experiment's validator (the kind's ``validate``, `experiments.kinds.KINDS`), then check the launcher,
    the results root and the output folder: any exception stops the sweep with one line naming the point,
    and nothing runs or is written. A single run (``hydra.mode=RUN``) is checked the same way."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        checked: set[str] = set()
        job: list[str] = []
        try:
            check_launcher(config)
            points = sweep_points(config)
            composed: dict[tuple[str, ...], DictConfig] = {}
            for job in points:
                # Points that differ only in the seed share problem and solver settings: compose one of them.
                shape = tuple(o for o in job if not o.startswith("seed="))
                seeds = [o.split("=", 1)[1] for o in job if o.startswith("seed=")]
                if shape in composed and all(s.isdigit() and int(s) <= preflight.INT64_MAX for s in seeds):
                    continue
                composed[shape] = cfg = compose(config_name=config.hydra.job.config_name,
                                                overrides=overrides_of(config, "hydra") + job)
                validate_point(cfg, checked)
            job = []
            check_folders(config, list(composed.values()))
        except errors.Refusal:
            raise
        except Exception as exc:
            # the point as typed: the sweeper escapes special characters (\\{ for {)
            label = re.sub(r"\\(.)", r"\1", " ".join(job))
            raise _stop(config, exc, f"sweep point [{label}]" if job else "") from None
        log.info("validated %d sweep points (%d distinct configurations)", len(points), len(checked))

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            validate_point(config, set())
            check_folders(config, [config])
        except errors.Refusal:
            raise
        except Exception as exc:
            raise _stop(config, exc) from None


class SweepReport(Callback):
    """At the end of a multirun, report over all of its jobs (works with any launcher: each job leaves its
    manifest in its output folder, on the shared file system, and the report merges them), then delete the
    temporary files that killed writers left in the results root more than an hour ago."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            write_report(config, sweep_members(sweep_dir), sweep_dir)
            ResultStore(results_root(config)).remove_stale_temporaries()
        except Exception as exc:  # Hydra would make it a warning and exit 0
            raise _stop(config, exc, "end-of-sweep report", errors.FAILED) from None
