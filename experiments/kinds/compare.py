"""Experiment kind ``compare``: a new solver against the baselines in one command.

Each job runs one solver through three parts — convergence over seeds, a small phase diagram and a
runtime-scaling sweep — reusing those experiment kinds with the settings under ``experiment.parts``; the
sweep report draws each part's figures and a ranked summary table.

Which part a run belongs to is a property of this sweep, not of the stored run: the job labels its rows
``part = <part>``, ``experiment = compare_<part>`` and its manifest records that (`experiments.store.manifest`),
so a convergence run first stored by a plain sweep (its id hashes problem + solver + seed, not the experiment)
counts in the convergence part exactly as if this sweep had computed it.

    obsbench -m experiment=compare hydra.searchpath=[file://my_conf] solver=my_solver,iht,cosamp,topk_iobs,bp
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from experiments.kinds import convergence, phase_transition, scaling
from experiments.store.results import final_rows
from problems import validation

log = logging.getLogger(__name__)

#: part name -> the experiment kind's module implementing it (``run``, ``report``, ``validate``).
PARTS = {"convergence": convergence, "phase_transition": phase_transition, "scaling": scaling}


def part_config(cfg: DictConfig, part: str, seed: int | None = None) -> DictConfig:
    """The job config seen by one part: ``experiment`` replaced by the part's settings (``problem`` keys in
    them override the problem), experiment name ``compare_<part>``."""
    settings = OmegaConf.to_container(cfg.experiment.parts[part], resolve=True)
    problem = settings.pop("problem", {})
    experiment = {"name": f"compare_{part}", "success_tol": cfg.experiment.success_tol, **settings}
    derived = OmegaConf.merge(cfg, {"problem": problem})
    OmegaConf.update(derived, "experiment", experiment, merge=False)
    if seed is not None:
        derived.seed = seed
    return derived


def _seeds(cfg: DictConfig) -> list[int]:
    count = cfg.experiment.parts.convergence.seeds
    validation.integer("experiment.parts.convergence.seeds", count, low=1)
    return [int(cfg.seed) + i for i in range(count)]


def validate(cfg: DictConfig, checked: set[str] | None = None) -> None:
    """Validate every part with its own validator before any work starts."""
    from experiments.execution.runner import validate as validate_run

    validate_run(part_config(cfg, "convergence", _seeds(cfg)[0]), checked)
    for part in ("phase_transition", "scaling"):
        PARTS[part].validate(part_config(cfg, part), checked)


def as_part(frame: pd.DataFrame, part: str) -> pd.DataFrame:
    """A part's rows labelled with the part they play in this sweep (whatever experiment first stored them)."""
    return frame.assign(experiment=f"compare_{part}", part=part)


def run(cfg: DictConfig) -> pd.DataFrame:
    """All parts for the job's solver; rows of each part carry ``part`` and ``experiment = compare_<part>``."""
    frames = [as_part(convergence.run(part_config(cfg, "convergence", seed)), "convergence") for seed in _seeds(cfg)]
    for part in ("phase_transition", "scaling"):
        frames.append(as_part(PARTS[part].run(part_config(cfg, part)), part))
    return pd.concat(frames, ignore_index=True)


def ranking(frame: pd.DataFrame, success_tol: float) -> pd.DataFrame:
    """One row per solver, best first: success rate (every convergence run, phase-diagram trial and scaling run
    together), median time to solve the convergence instances, and the convergence and phase-diagram success
    rates; ranked by overall success (descending), then median time (ascending).

    Rows are assigned to parts by the sweep's membership (the ``part`` column of a report frame), never by the
    experiment that first stored a run; a run that plays two parts counts in each."""
    if "part" not in frame:
        raise ValueError("ranking needs the sweep's membership (a `part` column): load the rows with "
                         "experiments.store.manifest.load_members")
    last = final_rows(frame)  # the final row of every (run, part, trial)
    success = last["rel_error"] <= success_tol
    by_solver = last["solver"]
    table = pd.DataFrame({
        "success_rate": success.groupby(by_solver).mean(),
        "convergence_success": success[last["part"] == "convergence"].groupby(by_solver).mean(),
        "phase_success": success[last["part"] == "phase_transition"].groupby(by_solver).mean(),
        "median_time_s": last[last["part"] == "convergence"].groupby("solver")["time_s"].median(),
        "errors": (last["status"] == "error").groupby(by_solver).sum(),
    })
    table = table.sort_values(["success_rate", "median_time_s"], ascending=[False, True])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(names="solver")


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Each part's report in its own sub-folder, then the ranked table (``ranking.csv``, logged)."""
    paths: list[Path] = []
    for part, module in PARTS.items():
        rows = frame[frame["part"] == part]
        if not rows.empty:
            paths += module.report(rows, out_dir / part, part_config(cfg, part))
    table = ranking(frame, float(cfg.experiment.success_tol))
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "ranking.csv", index=False)
    log.info("ranking (success: final relative error <= %g)\n%s", cfg.experiment.success_tol,
             table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return paths
