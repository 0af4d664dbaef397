"""Experiment kinds that make the theory visible.

- ``constants``: the restricted constants of one instance (each labelled exact / bound / sampled) and, for
  every solver with a theorem, whether the theorem applies and, if not, which assumption fails.
- ``rates``: convergence of IHT, CoSaMP, Topk-I-OBS and exact I-OBS on a quadratic and a non-quadratic
  problem, with the bounds of their theorems drawn, the e_{t+1}-vs-e_t order plot and a table of measured
  against theoretical rates.

    obsbench experiment=constants problem=cs_gaussian
    obsbench experiment=rates
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from experiments.analysis.rates import aggregate_rates, fit_rates
from experiments.execution.runner import build, resolved
from problems.conditioning import instance_constants
from solvers.base import REGISTRY
from solvers.bounds import no_bound, theorem_bounds, theorem_label, theorem_order

log = logging.getLogger(__name__)

def constants_table(constants: dict[str, dict]) -> pd.DataFrame:
    """One row per constant: name, value, how it was obtained, and the sparsity it refers to."""
    return pd.DataFrame([{"constant": name, "value": entry["value"], "how": entry["how"],
                          "sparsity": entry.get("sparsity", "")} for name, entry in constants.items()])


def theorem_table(problem, k: int, solvers: list[str]) -> pd.DataFrame:
    """One row per (solver, theorem): whether the theorem applies to this instance (with the solver's default
    parameters and budget k), the one-step bound from the starting point, and the failing condition. A solver
    without a theorem gets one row saying so."""
    start = float(np.linalg.norm(problem.x0 - problem.x_star))
    rows = []
    for name in solvers:
        solver = REGISTRY[name](k=k)
        try:
            solver.validate(problem)
            results = theorem_bounds(solver, problem, start) or [("-", *no_bound(solver))]
        except ValueError as exc:  # e.g. exact I-OBS on a large d: the solver itself cannot run
            results = [(theorem_label(solver), np.nan, f"solver cannot run: {exc}")]
        for theorem, value, note in results:
            applies = np.isfinite(value) and not note.startswith("estimate")
            rows.append({"solver": name, "theorem": theorem, "applies": bool(applies), "bound_from_x0": value,
                         "e0": start, "why_not": note})
    return pd.DataFrame(rows)


def constants_job(cfg: DictConfig) -> pd.DataFrame:
    """Compute and report the constants of ``cfg.problem`` (seed ``cfg.seed``); nothing is stored as a run."""
    problem = build(resolved(cfg.problem), "problem", seed=int(cfg.seed))
    k = int(cfg.experiment.k) if cfg.experiment.k is not None else problem.k_star
    if not 1 <= k <= problem.d:
        raise ValueError(f"experiment.k={k} must lie in [1, d={problem.d}]")
    unknown = [s for s in cfg.experiment.solvers if s not in REGISTRY]
    if unknown:
        raise ValueError(f"experiment.solvers has unknown solver {unknown[0]!r}; known: {', '.join(sorted(REGISTRY))}")
    constants = constants_table(instance_constants(problem, k=k))
    theorems = theorem_table(problem, k, list(cfg.experiment.solvers))
    out_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path.cwd()
    constants.to_csv(out_dir / "constants.csv", index=False)
    theorems.to_csv(out_dir / "theorems.csv", index=False)
    log.info("constants of %s (seed %d, d=%d, k*=%d, k=%d)\n%s", problem.name, cfg.seed, problem.d,
             problem.k_star, k, constants.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    log.info("theorems\n%s", theorems.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    log.info("tables: %s, %s", out_dir / "constants.csv", out_dir / "theorems.csv")
    return pd.DataFrame(columns=["run_id"])


def validate_constants(cfg: DictConfig, checked: set[str] | None = None) -> None:
    """Sweep-time check: the problem builds."""
    build(resolved(cfg.problem), "problem", seed=int(cfg.seed))


def rate_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, solver): measured ρ̂ and q̂ with 95% t-intervals over seeds, beside the theorem, its
    order, and its median one-step contraction bound/e_t (linear theorems) or bound/e_t² (quadratic)."""
    per_run = fit_rates(frame, by=("problem", "solver"))
    measured = aggregate_rates(per_run, by=("problem", "solver"))
    rows = []
    for (problem, solver), runs in frame.groupby(["problem", "solver"], sort=True):
        order = theorem_order(solver)
        runs = runs.sort_values(["run_id", "iteration"])
        previous = runs.groupby("run_id")["distance"].shift(1)
        certified = runs["bound_note"] == ""
        ratio = runs["bound"] / previous ** (order or 1)
        ratio = ratio[certified & np.isfinite(ratio) & (previous > 1e-12)]
        notes = runs.loc[~certified, "bound_note"]
        rows.append({"problem": problem, "solver": solver, "theorem": theorem_label(solver),
                     "theory_order": order, "theory_constant": float(ratio.median()) if len(ratio) else np.nan,
                     "theory_note": "" if len(ratio) else (notes.mode().iloc[0] if len(notes) else "")})
    return measured.merge(pd.DataFrame(rows), on=["problem", "solver"])


def rates_report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Per problem, the bound-overlay and order figure; the rate table (CSV, logged)."""
    from plots.style import save
    from plots.theory import theory_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    table = rate_table(frame)
    table.to_csv(out_dir / "rates.csv", index=False)
    shown = ["problem", "solver", "n_runs", "rho_hat_mean", "q_hat_mean", "q_hat_ci_low", "q_hat_ci_high",
             "theory_order", "theory_constant", "theory_note"]
    log.info("measured vs theoretical rates\n%s", table[shown].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    paths = []
    for problem, rows in frame.groupby("problem", sort=True):
        title = f"Measured errors and the theorems' bounds on {problem}"
        paths += save(theory_figure(rows, title), out_dir / f"rates_{problem}")
    return paths
