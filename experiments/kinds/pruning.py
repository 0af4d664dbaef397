"""Experiment kinds ``prune_vit``, ``prune_lm``, ``prune_encoder``: layer-wise pruning of torch models
(`pruning/`, installed by the ``obsbench[torch]`` extra) through the same app and result store.

One job prunes one model with every method × sparsity × I-OBS round count of ``experiment`` and stores the tidy
rows of `pruning.experiments.run_pruning` as one run (a rerun reads them back). The report writes the summary
table, metric vs sparsity per method, metric vs I-OBS round on calibration and held-out data (the paper's
overfitting curve) and the per-layer error tables.

    obsbench experiment=prune_vit
    obsbench experiment=prune_lm experiment.sparsities=[0.5,0.7] experiment.rounds=[1,2,3]
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from experiments.store.results import ResultStore, provenance, run_id
from experiments.execution.runner import results_root
from plots.style import save

log = logging.getLogger(__name__)

#: The pruning methods (`pruning.experiments.METHODS`, repeated here so that validating a config does not
#: import torch; `tests/test_pruning_cli.py` checks that the two lists agree).
METHODS = ("magnitude", "wanda", "sparsegpt", "obs", "iobs")


def settings(cfg: DictConfig) -> dict[str, Any]:
    """The job's pruning settings as plain values, validated with one-line errors."""
    exp = OmegaConf.to_container(cfg.experiment, resolve=True)
    unknown = [m for m in exp["methods"] if m not in METHODS]
    if unknown:
        raise ValueError(f"experiment.methods has unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    if not all(0.0 <= float(s) < 1.0 for s in exp["sparsities"]):
        raise ValueError(f"experiment.sparsities={exp['sparsities']} must lie in [0, 1)")
    if not all(isinstance(r, int) and r >= 1 for r in exp["rounds"]):
        raise ValueError(f"experiment.rounds={exp['rounds']} must be integers >= 1")
    keys = ("model", "methods", "sparsities", "rounds", "device", "task", "iobs", "max_blocks")
    return {key: exp.get(key) for key in keys} | {"seed": int(cfg.seed)}


def validate(cfg: DictConfig, checked: set[str] | None = None) -> None:
    """Sweep-time validation: the settings, and that the torch extra is installed."""
    settings(cfg)
    try:
        import pruning  # noqa: F401
    except ImportError as exc:
        raise ValueError(f"experiment={cfg.experiment.name} needs the torch extra (pip install -e '.[torch]'): "
                         f"{exc}") from None


def run(cfg: DictConfig) -> pd.DataFrame:
    """Prune (or read back) and return the tidy rows, with ``run_id`` and ``experiment`` columns."""
    from pruning.engine import PruneSpec
    from pruning.experiments import run_pruning
    from pruning.iobs import IOBSConfig

    job = settings(cfg)
    rid = run_id({"model": job["model"], "task": job["task"]}, {k: v for k, v in job.items() if k != "task"},
                 job["seed"])
    store = ResultStore(results_root(cfg))
    if store.has(rid):
        log.info("pruning run %s already stored, skipping", rid)
        return store.read(rid)
    rows = run_pruning(job["model"], job["methods"], job["sparsities"], job["rounds"], job["seed"], job["device"],
                       iobs=IOBSConfig(**(job["iobs"] or {})), spec=PruneSpec(max_blocks=job["max_blocks"]),
                       task_options=job["task"] or {})
    rows = rows.assign(run_id=rid, experiment=str(cfg.experiment.name), table="pruning", **provenance())
    store.write(rid, rows)
    return rows


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Summary table (CSV, logged), metric-vs-sparsity and metric-vs-rounds figures, per-layer error tables."""
    from pruning.figures import HEADLINE, layer_error_table, metric_vs_iterations, metric_vs_sparsity

    out_dir.mkdir(parents=True, exist_ok=True)
    model_rows = frame[frame["layer"] == ""]
    summary = model_rows.pivot_table(index=["method", "sparsity", "iterations"], columns=["split", "metric"],
                                     values="value")
    summary.to_csv(out_dir / "summary.csv")
    log.info("pruning summary\n%s", summary.to_string(float_format=lambda v: f"{v:.4g}"))
    model = str(model_rows["model"].iloc[0])
    metric = HEADLINE.get(model, model_rows["metric"].iloc[0])
    paths = save(metric_vs_sparsity(frame, metric), out_dir / "metric_vs_sparsity")
    for sparsity in sorted(s for s in frame["sparsity"].unique() if s > 0):
        paths += save(metric_vs_iterations(frame, metric, sparsity), out_dir / f"metric_vs_rounds_{sparsity:g}")
        layer_error_table(frame, sparsity).to_csv(out_dir / f"layer_errors_{sparsity:g}.csv")
    return paths
