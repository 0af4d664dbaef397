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

log = logging.getLogger(__name__)

#: The pruning methods (`pruning.experiments.METHODS`, repeated here so that validating a config does not
#: import torch; `tests/test_pruning_cli.py` checks that the two lists agree).
METHODS = ("magnitude", "wanda", "sparsegpt", "obs", "wanda_equal", "sparsegpt_equal", "iobs")


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
    stored = store.read_valid(rid) if store.has(rid) else None
    if stored is not None:
        log.info("pruning run %s already stored, skipping", rid)
        return stored
    rows = run_pruning(job["model"], job["methods"], job["sparsities"], job["rounds"], job["seed"], job["device"],
                       iobs=IOBSConfig(**(job["iobs"] or {})), spec=PruneSpec(max_blocks=job["max_blocks"]),
                       task_options=job["task"] or {})
    rows = rows.assign(run_id=rid, experiment=str(cfg.experiment.name), table="pruning", **provenance())
    store.write(rid, rows)
    return rows


def report(frame: pd.DataFrame, out_dir: Path, cfg: DictConfig) -> list[Path]:
    """Summary table over seeds (CSV, logged as mean ± sd), metric-vs-sparsity and metric-vs-rounds figures for
    the model's headline metric and its NLL where it has one, per-layer error tables."""
    from plots.style import save

    from pruning.figures import HEADLINE, layer_error_table, metric_vs_iterations, metric_vs_sparsity, seed_summary

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = seed_summary(frame)
    summary.to_csv(out_dir / "summary.csv", index=False)
    shown = summary.assign(value=[f"{m:.4g} ± {s:.2g}" if n > 1 else f"{m:.4g}"
                                  for m, s, n in zip(summary["mean"], summary["std"], summary["seeds"])])
    table = shown.pivot_table(index=["sparsity", "label"], columns=["split", "metric"], values="value",
                              aggfunc="first", sort=True)
    seeds = int(summary["seeds"].max())
    log.info("pruning summary (%s)\n%s", f"mean ± sd over {seeds} seeds" if seeds > 1 else "one seed",
             table.to_string())
    model_rows = frame[frame["layer"] == ""]
    model = str(model_rows["model"].iloc[0])
    headline = HEADLINE.get(model, model_rows["metric"].iloc[0])
    metrics = [headline] + (["nll"] if "nll" in set(model_rows["metric"]) and headline != "nll" else [])
    paths = [out_dir / "summary.csv"]
    for metric in metrics:
        suffix = "" if metric == headline else f"_{metric}"
        paths += save(metric_vs_sparsity(frame, metric), out_dir / f"metric_vs_sparsity{suffix}")
        for sparsity in sorted(s for s in frame["sparsity"].unique() if s > 0):
            paths += save(metric_vs_iterations(frame, metric, sparsity),
                          out_dir / f"metric_vs_rounds_{sparsity:g}{suffix}")
    for sparsity in sorted(s for s in frame["sparsity"].unique() if s > 0):
        layer_error_table(frame, sparsity).to_csv(out_dir / f"layer_errors_{sparsity:g}.csv")
    return paths
