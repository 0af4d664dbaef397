"""Experiment kind ``convergence``: one (problem, solver, seed) per job; the sweep report draws the error
curves of every solver and prints the summary table.

    obsbench                                              # IHT, CoSaMP, basis pursuit x 3 seeds
    obsbench -m solver=iht,cosamp problem.k_star=5,10 seed='range(3)'
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from experiments.store import manifest
from experiments.store.results import ResultStore
from experiments.execution.runner import RunSpec, execute, results_root
from experiments.store.summary import format_table, summarise

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> pd.DataFrame:
    """Run the job's (problem, solver, seed) and return its rows (read back if already stored)."""
    return execute(RunSpec.from_config(cfg), ResultStore(results_root(cfg)))


def plan(cfg: DictConfig) -> pd.DataFrame:
    """The job's memberships (`experiments.store.manifest`) without running it: its one run, playing
    ``experiment.name`` (what `run` lists in its manifest)."""
    return manifest.job_members(pd.DataFrame({"run_id": [RunSpec.from_config(cfg).run_id]}), str(cfg.experiment.name))


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Summary table (logged and written as CSV) and the convergence figure (PNG + PDF)."""
    from plots.convergence import convergence_figure
    from plots.style import save

    table = summarise(frame, success_tol=float(cfg.experiment.success_tol))
    log.info("summary (success: final relative error <= %g)\n%s", cfg.experiment.success_tol, format_table(table))
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "summary.csv", index=False)
    problems = ", ".join(sorted(frame["problem"].unique()))
    figure = convergence_figure(frame, title=f"Convergence on {problems}")
    return save(figure, out_dir / "convergence")
