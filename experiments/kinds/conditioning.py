"""Experiment kind ``conditioning``: iterations, time and final error against the condition number.

Each job is one (problem, solver, seed) convergence run (`experiments.kinds.convergence.run`); the sweep varies the
conditioning parameter of the problem (``problem.kappa`` of the exact-κ regression, ``problem.rho`` of the
Toeplitz sensing design). The report measures, per run, the first iteration and the time at which the
relative error falls below ``experiment.success_tol``, computes the achieved constants of every instance
beside the requested ones, and draws both against the restricted condition number with the theory's
prediction: IHT with step 1/L contracts by about 1 − 1/κ per step, so it needs ≈ κ·log(e₀/ε) iterations,
while an exact Newton method (Topk-I-OBS) needs one step on a quadratic whatever κ is.

    obsbench experiment=conditioning
    obsbench experiment=conditioning problem=cs_correlated 'hydra.sweeper.params.problem\\.rho=0,0.3,0.6,0.9'
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from experiments.store.results import final_rows
from experiments.execution.runner import build, resolved
from problems.conditioning import instance_constants

log = logging.getLogger(__name__)

#: Parameters that set the conditioning, in the order they are looked for in the result columns.
CONDITIONING_PARAMETERS = ("kappa", "rho")


def to_tolerance(frame: pd.DataFrame, tol: float) -> pd.DataFrame:
    """One row per run: iterations and time until the relative error first falls below ``tol`` (NaN if never),
    the final relative error and the status."""
    rows = []
    for run_id, run in frame.sort_values("iteration").groupby("run_id", sort=False):
        reached = run[run["rel_error"] <= tol]
        first = reached.iloc[0] if len(reached) else None
        rows.append({"run_id": run_id, "solver": run["solver"].iloc[0], "seed": run["seed"].iloc[0],
                     "iterations_to_tol": first["iteration"] if first is not None else np.nan,
                     "time_to_tol_s": first["time_s"] if first is not None else np.nan,
                     "final_rel_error": run["rel_error"].iloc[-1], "status": run["status"].iloc[-1]})
    return pd.DataFrame(rows)


def achieved_constants(frame: pd.DataFrame, cfg: DictConfig) -> pd.DataFrame:
    """Per run: the requested conditioning parameter and the achieved constants of its instance (global κ of
    the Hessian, restricted κ over 2k-sparse supports, RIP δ_2k), each with how it was obtained."""
    parameter = next((p for p in CONDITIONING_PARAMETERS if f"p_{p}" in frame and frame[f"p_{p}"].nunique() > 1),
                     None)
    base = resolved(cfg.problem)
    rows = []
    for run_id, run in final_rows(frame).groupby("run_id", sort=False):
        row = run.iloc[0]
        params = {**base, **({parameter: row[f"p_{parameter}"]} if parameter else {})}
        constants = instance_constants(build(params, "problem", seed=int(row["seed"])))
        rows.append({"run_id": run_id, "requested": row.get(f"p_{parameter}", np.nan) if parameter else np.nan,
                     "parameter": parameter or "",
                     "condition_number": constants["condition_number"]["value"],
                     "restricted_condition_number": constants["kappa_2k"]["value"],
                     "restricted_how": constants["kappa_2k"]["how"],
                     "delta_2k": constants["delta_2k"]["value"]})
    return pd.DataFrame(rows)


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Table (conditioning.csv, logged) and figure (conditioning.png/.pdf)."""
    from plots.conditioning import conditioning_figure
    from plots.style import save

    out_dir.mkdir(parents=True, exist_ok=True)
    table = to_tolerance(frame, float(cfg.experiment.success_tol)).merge(achieved_constants(frame, cfg), on="run_id")
    table.to_csv(out_dir / "conditioning.csv", index=False)
    summary = table.groupby(["requested", "solver"]).agg(
        restricted_condition_number=("restricted_condition_number", "median"),
        iterations_to_tol=("iterations_to_tol", "median"), time_to_tol_s=("time_to_tol_s", "median"),
        final_rel_error=("final_rel_error", "median")).reset_index()
    log.info("iterations to relative error <= %g against conditioning\n%s", cfg.experiment.success_tol,
             summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return save(conditioning_figure(table, float(cfg.experiment.success_tol)), out_dir / "conditioning")
