"""The I-OBS paper's Figure 1 (Wu et al., NeurIPS 2024, §4.1): k-IHT against Topk-I-OBS on sparse linear
regression, in two step conventions.

- ``code``: the scaling of the authors' simulation code (notes §4.2–4.3). It minimises the MSE
  (1/n)‖Xθ − y‖² = (2/n)·f with f = ½‖Xθ − y‖², but divides by the "Hessian" XᵀX of f, so both methods take
  2/n times the step they would take on f: Topk-I-OBS is a damped Newton step with γ = 2/n and k-IHT uses
  η = (2/n)/λ_max(XᵀX). This reproduces the paper's slow ~700-step curves.
- ``exact``: the exact Newton step γ = 1 (Lemma 3) and η = 1/λ_max(XᵀX). On this noiseless quadratic with
  n > d Topk-I-OBS lands on θ* after one step, which is what Theorem 1 / Lemma 3 predict (M = 0).

    obsbench experiment=paper_fig1a      # Gaussian prior, 20 seeds x 750 steps
    obsbench experiment=paper_fig1b      # digit prior (MNIST stand-in), 20 seeds x 4000 steps
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from experiments.store.results import ResultStore, final_rows
from experiments.execution.runner import RunSpec, build, execute, resolved, results_root

log = logging.getLogger(__name__)

VARIANT_LABELS = {"code": "paper's code scaling (step 2/n)", "exact": "exact Newton (step 1)"}
#: Final mean distances of the authors' saved Figure 1a arrays (notes §4.2), for comparison.
PAPER_CODE_FINAL_DISTANCE = {"topk_iobs": 0.050, "iht": 1.14}


def step_parameters(variant: str, n: int) -> dict[str, dict[str, float]]:
    """Step-size parameters of each method under a step convention (see the module docstring)."""
    if variant not in VARIANT_LABELS:
        raise ValueError(f"variant={variant!r} must be one of {', '.join(VARIANT_LABELS)}")
    scale = 2.0 / n if variant == "code" else 1.0
    return {"iht": {"step_scale": scale, "step_size": None}, "topk_iobs": {"newton_step": scale}}


def _specs(cfg: DictConfig) -> list[RunSpec]:
    """One run per (variant, seed, method) with the paper's budget k and number of steps."""
    experiment = cfg.experiment
    problem = resolved(cfg.problem)
    specs = []
    for variant in experiment.variants:
        for seed in range(int(experiment.seeds)):
            instance = build(problem, "problem", seed=seed)
            k = int(round(float(experiment.k_factor) * instance.k_star))
            steps = step_parameters(variant, instance.m)
            for name, node in experiment.solvers.items():
                solver = {**resolved(node), "k": k, "max_iter": int(experiment.steps), **steps[name]}
                specs.append(RunSpec(experiment=str(experiment.name), problem=problem, solver=solver, seed=seed))
    return specs


def _execute_single_threaded(spec: RunSpec, store: ResultStore, keep: bool) -> pd.DataFrame:
    with threadpool_limits(1):  # one BLAS thread per worker: the workers already use every core
        return execute(spec, store, keep_solution=keep)


def run(cfg: DictConfig) -> pd.DataFrame:
    """All runs of the figure (stored runs are read back), as one table; runs go to ``experiment.n_jobs``
    joblib workers (results do not depend on the number of workers)."""
    store = ResultStore(results_root(cfg))
    keep = bool(cfg.experiment.get("keep_solution", False))
    tasks = (delayed(_execute_single_threaded)(spec, store, keep) for spec in _specs(cfg))
    frames = Parallel(n_jobs=int(cfg.experiment.get("n_jobs", 1)))(tasks)
    return pd.concat(frames, ignore_index=True)


def validate(cfg: DictConfig, checked: set[str] | None = None) -> None:
    """Sweep-time validation: the variants are known and the first run of each can be prepared."""
    from experiments.execution.runner import prepare

    for variant in cfg.experiment.variants:
        step_parameters(variant, 2)
    prepare(_specs(cfg)[0])


def label_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a ``variant`` column (``code`` / ``exact``) from the stored step parameters."""
    unit = np.where(frame["solver"] == "iht", frame.get("s_step_scale"), frame.get("s_newton_step"))
    return frame.assign(variant=np.where(np.isclose(unit.astype(float), 1.0), "exact", "code"))


def summary_numbers(frame: pd.DataFrame, thresholds: tuple[float, ...] = (1.0, 0.5, 0.1)) -> pd.DataFrame:
    """Per (variant, method): final mean ± std distance and loss, and the first step at which the mean
    distance drops below each threshold (NaN if never)."""
    from plots.convergence import per_iteration

    rows: list[dict[str, Any]] = []
    for (variant, solver), runs in frame.groupby(["variant", "solver"], sort=True):
        last = final_rows(runs)
        mean_curve = per_iteration(runs, "distance").mean(axis=1)
        row = dict(variant=variant, solver=solver, runs=runs["run_id"].nunique(),
                   final_distance_mean=last["distance"].mean(), final_distance_std=last["distance"].std(),
                   final_mse_mean=(last["objective"] * 2.0 / last["p_n"]).mean())
        for threshold in thresholds:
            below = mean_curve.index[mean_curve < threshold]
            row[f"first_step_below_{threshold:g}"] = below[0] if len(below) else np.nan
        if variant == "code" and solver in PAPER_CODE_FINAL_DISTANCE and runs["problem"].iloc[0] == "paper_gaussian":
            row["paper_code_final_distance"] = PAPER_CODE_FINAL_DISTANCE[solver]
        rows.append(row)
    return pd.DataFrame(rows)


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Curves (PNG + PDF), the data behind them (parquet), the summary numbers (CSV, logged) and, for the
    digit prior, the image mosaic."""
    from plots.paper import digit_mosaic, paper_curves_figure
    from plots.style import save

    frame = label_variants(frame)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = str(cfg.experiment.name)
    frame.to_parquet(out_dir / f"{name}_data.parquet", index=False)
    numbers = summary_numbers(frame)
    numbers.to_csv(out_dir / f"{name}_summary.csv", index=False)
    log.info("%s summary\n%s", name, numbers.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    caption = str(cfg.experiment.caption)
    paths = save(paper_curves_figure(frame, VARIANT_LABELS, caption), out_dir / name)
    if cfg.experiment.get("keep_solution", False):
        store = ResultStore(results_root(cfg))
        images = _recovered_images(frame[frame["variant"] == "code"], store, cfg)
        paths += save(digit_mosaic(images, caption), out_dir / f"{name}_digits")
    return paths


def _recovered_images(frame: pd.DataFrame, store: ResultStore, cfg: DictConfig, n_images: int = 6) -> dict[str, list]:
    """Originals and each method's final iterate for the first ``n_images`` seeds, as side×side arrays."""
    side = int(cfg.problem.side)
    images: dict[str, list] = {"original": []}
    for seed in sorted(frame["seed"].unique())[:n_images]:
        runs = final_rows(frame[frame["seed"] == seed]).sort_values("solver")
        problem = build(resolved(cfg.problem), "problem", seed=int(seed))
        images["original"].append(problem.x_star.reshape(side, side))
        for _, row in runs.iterrows():
            x = store.read_solution(row["run_id"])
            images.setdefault(row["solver"], []).append(None if x is None else x.reshape(side, side))
    return images
