"""``obsbench-collect ROOT``: aggregate every run under a results root into one table, a CSV and a short
markdown report (per experiment, problem and solver: runs, success rate, iterations, time, statuses).

A run belongs to every experiment that used it: the one that first computed it (its stored ``experiment``) and
every experiment whose sweep referenced it (the job manifests copied under ``ROOT/manifests``,
`experiments.store.manifest`). The per-experiment tables count a shared run under each, so an experiment's
rows do not depend on which other sweeps ran first in the same root.

    obsbench-collect results                 # writes results/collected.csv, summary.csv, report.md
    obsbench-collect results --out reports/  # somewhere else
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from experiments import errors
from experiments.store.manifest import experiment_labels, stored_members
from experiments.store.results import final_rows, load, split_tables
from experiments.store.summary import summarise

log = logging.getLogger(__name__)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table (numbers to 3 significant digits)."""
    def cell(value: object) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def pruning_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Model-level pruning metrics (per-layer errors left out), one row per (experiment, model, method, sparsity,
    I-OBS rounds, split, metric) with its value."""
    model_rows = rows[rows["layer"].fillna("").eq("")] if "layer" in rows else rows
    keys = ["experiment", "model", "method", "sparsity", "iterations", "split", "metric"]
    keys = [key for key in keys if key in model_rows]
    return model_rows.groupby(keys, sort=True, dropna=False)["value"].mean().reset_index()


def by_experiment(rows: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``rows`` once per experiment their run belongs to (``labels``: one row per run and experiment), in the
    ``experiment`` column."""
    return rows.drop(columns="experiment").merge(labels, on="run_id", how="inner")


def collect(root: Path, out: Path, success_tol: float = 1e-4) -> list[Path]:
    """Write ``collected.csv`` (final row of every solver run), ``summary.csv`` and ``report.md`` into ``out``,
    plus ``pruning_summary.csv`` when the root holds pruning runs (the store's second table); a root with only
    pruning runs, or a mix, is handled.

    ``collected.csv`` keeps each run's stored ``experiment`` (the one that first computed it) and lists in
    ``experiments`` every experiment it belongs to; the summaries count a run under each of them."""
    frame = load(root)
    if frame.empty:
        raise ValueError(f"no results under {root}")
    labels = experiment_labels(frame, stored_members(root))
    traces, pruning = split_tables(frame)
    out.mkdir(parents=True, exist_ok=True)
    paths, lines = [], [f"# obsbench sweep report: `{root}`", ""]
    if not traces.empty:
        last = final_rows(traces)
        names = labels.groupby("run_id")["experiment"].agg("; ".join)
        last = last.assign(experiments=last["run_id"].map(names))
        tables = [summarise(rows, success_tol).assign(experiment=name)
                  for name, rows in by_experiment(last, labels).groupby("experiment", sort=True)]
        summary = pd.concat(tables, ignore_index=True)
        summary = summary[["experiment", *[c for c in summary.columns if c != "experiment"]]]
        paths += [out / "collected.csv", out / "summary.csv"]
        last.to_csv(paths[0], index=False)
        summary.to_csv(paths[1], index=False)
        counts = last["status"].value_counts().to_dict()
        shared = int((labels[labels["run_id"].isin(last["run_id"])].groupby("run_id").size() > 1).sum())
        lines += [f"{last['run_id'].nunique()} solver runs, {len(traces)} rows; statuses: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".",
                  f"Success: final relative error ≤ {success_tol:g}.",
                  f"A run counts under every experiment that used it ({shared} runs are shared by several).", "",
                  markdown_table(summary), ""]
    if not pruning.empty:
        table = pruning_summary(by_experiment(pruning, labels))
        paths.append(out / "pruning_summary.csv")
        table.to_csv(paths[-1], index=False)
        lines += ["## Pruning runs", "", f"{pruning['run_id'].nunique()} pruning runs, {len(pruning)} rows "
                  "(model-level metrics; per-layer errors in collected rows of each run).", "",
                  markdown_table(table), ""]
    paths.append(out / "report.md")
    paths[-1].write_text("\n".join(lines))
    return paths


def main(argv: list[str] | None = None) -> None:
    """Console entry point ``obsbench-collect``."""
    parser = argparse.ArgumentParser(prog="obsbench-collect", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="results root (folder of per-run parquet files)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: ROOT)")
    parser.add_argument("--success-tol", type=float, default=1e-4, help="success threshold on the relative error")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with errors.boundary("obsbench-collect"):  # one line for any failure (experiments.errors)
        out = args.out or args.root
        if not args.root.is_dir():
            raise ValueError(f"{args.root} is not a folder of results" if args.root.exists()
                             else f"no results under {args.root} (no such folder)")
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file, not a folder")
        paths = collect(args.root, out, args.success_tol)
    for path in paths:
        log.info("wrote %s", path)
