"""Command line for `pruning.experiments.run_pruning` until the Hydra app wraps it:

    python -m pruning --model vit --methods magnitude wanda sparsegpt iobs --sparsities 0.5 0.7 \
        --rounds 1 2 3 --out results/prune_vit

writes ``rows.parquet``, ``summary.csv`` (model-level metrics) and the figures into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pruning.engine import PruneSpec
from pruning.experiments import run_pruning
from pruning.figures import HEADLINE, layer_error_table, metric_vs_iterations, metric_vs_sparsity
from pruning.iobs import IOBSConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pruning", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit")
    p.add_argument("--methods", nargs="+", default=["magnitude", "wanda", "sparsegpt", "iobs"])
    p.add_argument("--sparsities", nargs="+", type=float, default=[0.5, 0.7])
    p.add_argument("--rounds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--iobs", type=json.loads, default={}, help='IOBSConfig fields as JSON, e.g. {"lr": 1.0}')
    p.add_argument("--task", type=json.loads, default={}, help='TaskConfig fields as JSON, e.g. {"seqlen": 64}')
    p.add_argument("--max-blocks", type=int, default=None)
    p.add_argument("--out", type=Path, required=True)
    return p


def main(argv: list[str] | None = None) -> None:
    """Run the sweep and write rows, summary and figures."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    df = run_pruning(args.model, args.methods, args.sparsities, args.rounds, args.seed, args.device,
                     iobs=IOBSConfig(**args.iobs), spec=PruneSpec(max_blocks=args.max_blocks),
                     task_options=args.task)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_parquet(args.out / "rows.parquet")
    model_rows = df[df["layer"] == ""]
    model_rows.pivot_table(index=["method", "sparsity", "iterations"], columns=["split", "metric"],
                           values="value").to_csv(args.out / "summary.csv")
    metric = HEADLINE.get(args.model, model_rows["metric"].iloc[0])
    metric_vs_sparsity(df, metric).savefig(args.out / "metric_vs_sparsity.png", dpi=150)
    for s in args.sparsities:
        metric_vs_iterations(df, metric, s).savefig(args.out / f"metric_vs_rounds_{s:g}.png", dpi=150)
        layer_error_table(df, s).to_csv(args.out / f"layer_errors_{s:g}.csv")


if __name__ == "__main__":
    main()
