"""Entry point of the performance benchmarks: ``python -m benchmarks.run`` (what ``make bench`` runs).

    python -m benchmarks.run                       # every group, full size (tens of minutes)
    python -m benchmarks.run --quick               # without the command-line groups (phase diagrams, sweep)
    python -m benchmarks.run --only blas_floor peers
    python -m benchmarks.run --smoke --out /tmp/b  # tiny sizes, seconds: checks that everything runs

Writes ``benchmarks.csv`` and ``benchmarks.md`` (and ``scaling.png``) into ``--out`` (default
``benchmarks/results``; a temporary folder in smoke mode) and prints the markdown table.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Sequence

from benchmarks import (batched, blas_floor, iobs_cost, l1_fast_path, observer_cost, parallel, peers, phase_budget,
                        phase_scale, scaling)
from benchmarks.harness import Settings
from benchmarks.report import Machine, Row, markdown_table, write_csv, write_markdown

log = logging.getLogger("benchmarks")

#: Benchmark groups in the order of the issue's targets.
GROUPS: dict[str, ModuleType] = {
    "blas_floor": blas_floor, "peers": peers, "iobs_cost": iobs_cost, "l1_fast_path": l1_fast_path,
    "phase_budget": phase_budget, "observer_cost": observer_cost, "parallel": parallel, "scaling": scaling,
    "batched": batched, "phase_scale": phase_scale,
}
#: Groups that drive the command line for minutes; ``--quick`` skips them.
SLOW_GROUPS = ("phase_budget", "parallel", "batched", "phase_scale")
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (checks, no measurements)")
    parser.add_argument("--quick", action="store_true", help=f"skip the slow groups ({', '.join(SLOW_GROUPS)})")
    parser.add_argument("--only", nargs="+", choices=sorted(GROUPS), metavar="NAME",
                        help=f"run only these groups: {', '.join(GROUPS)}")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default benchmarks/results)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per timing (default 21; smoke 1)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads for in-process timings, both sides of each comparison (default 1)")
    return parser.parse_args(argv)


def selected_groups(args: argparse.Namespace) -> list[str]:
    """The groups to run, in issue order."""
    names = args.only or list(GROUPS)
    return [name for name in GROUPS if name in names and not (args.quick and name in SLOW_GROUPS)]


def run_group(name: str, settings: Settings) -> tuple[list[Row], bool]:
    """The rows of one group and whether it ran; a crash becomes one row saying so, and the other groups
    still run."""
    tic = time.perf_counter()
    try:
        rows, ok = GROUPS[name].run(settings), True
    except Exception as exc:  # a broken group must not lose the results of the others
        log.exception("benchmark group %s failed", name)
        rows, ok = [Row(name, f"group {name} failed", float("nan"), "", note=f"{type(exc).__name__}: {exc}")], False
    log.info("group %s: %d rows in %.1f s", name, len(rows), time.perf_counter() - tic)
    return rows, ok


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected groups, write the CSV and markdown tables, print the table; 0 unless a group crashed."""
    args = parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")  # the scaling figure is a file
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    tic = time.perf_counter()
    out = args.out or (Path(tempfile.mkdtemp(prefix="obsbench-bench-smoke-")) if args.smoke else RESULTS)
    rows, failed = [], []
    with tempfile.TemporaryDirectory(prefix="obsbench-bench-") as scratch:
        settings = Settings(smoke=args.smoke, repeats=args.repeats or (1 if args.smoke else 21),
                            blas_threads=args.blas_threads, scratch=Path(scratch), out=out)
        machine = Machine.current(settings.blas_threads)
        for name in selected_groups(args):
            group_rows, ok = run_group(name, settings)
            rows += group_rows
            failed += [] if ok else [name]
    command = "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    csv_path = write_csv(rows, machine, out / "benchmarks.csv")
    md_path = write_markdown(rows, machine, out / "benchmarks.md", command.strip(), time.perf_counter() - tic)
    sys.stdout.write(markdown_table(rows) + "\n")
    log.info("wrote %s and %s%s", csv_path, md_path, f"; groups that failed: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
