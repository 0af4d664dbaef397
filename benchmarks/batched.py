"""Batched trials (issue #18): full-size phase diagrams batched vs one trial at a time, and the cost of a batched
IHT iteration against its two matrix products. Run by hand; writes ``benchmarks/results/batched.md``.

    .venv/bin/python -m benchmarks.batched                  # everything (~10 min on 2 cores)
    .venv/bin/python -m benchmarks.batched --skip-per-trial  # batched grids and the iteration costs only

1. **Grids.** The real command line, ``obsbench experiment=phase_transition solver=<s> problem.d=200
   experiment.deltas=15 experiment.rhos=15 experiment.trials=20`` (4500 solves, joblib workers on every core),
   with ``experiment.batched=true`` and ``false``, each in an empty results root; wall time of the whole command
   (start-up, validation, the grid, fits and figures). Issue target: ≤ 30 s for IHT and for CoSaMP on 2 cores.
2. **Iteration cost.** One cell of 20 trials (m = 100, d = 200, k = 45: every trial runs all ``ITERATIONS``
   iterations), one BLAS thread: the batched run's time per trial-iteration (everything: steps, stopping rules,
   cycle keys, the one-trial ``init`` and final rows) over the time per trial of the two stacked products A x and
   Aᵀ r that every IHT iteration needs. Issue target: ≤ 1.5. The same for 100 trials, and for torch on the CPU.

Medians over ``--repeats`` runs of part 2, one run per grid (each takes minutes); the machine's core count and
load averages before and after are written with the numbers (other jobs share this machine).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.cli import run_obsbench
from benchmarks.harness import Settings
from benchmarks.report import Row
from problems.batched import build_batch
from problems.sensing import make_compressed_sensing
from solvers.batched import BatchedIHT
from solvers.hard_thresholding import IHT

log = logging.getLogger(__name__)

OUT = Path(__file__).resolve().parent / "results" / "batched.md"
GRID = ("experiment=phase_transition", "problem.d=200", "experiment.deltas=15", "experiment.rhos=15",
        "experiment.trials=20", "experiment.progress=false")
TARGET_GRID_S = 30.0
TARGET_RATIO = 1.5
CELL = dict(m=100, d=200, k_star=45)
ITERATIONS = 300
MARK = ("<!-- measured by benchmarks/batched.py -->", "<!-- end of measured -->")
#: ``make bench`` group (`run`): the issue's two targets as benchmark rows.
GROUP = "7 batched trials"
SMOKE_GRID = ("experiment=phase_transition", "problem.d=16", "experiment.deltas=2", "experiment.rhos=2",
              "experiment.trials=2", "experiment.progress=false")


def grid_seconds(solver: str, batched: bool, scratch: Path, grid: tuple[str, ...] = GRID) -> tuple[float, float]:
    """Wall time of the full-size diagram of ``solver`` and the CPU time of the command and its workers (user +
    system; NaN if the command failed). On a shared machine the CPU time / cores is the steadier figure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    outcome = run_obsbench([*grid, f"solver={solver}", f"experiment.batched={str(batched).lower()}"],
                           scratch / f"{solver}_{batched}", timeout=3600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not outcome.ok:
        log.error("obsbench failed:\n%s", outcome.tail)
        return float("nan"), float("nan")
    return outcome.seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def iteration_ratio(trials: int, backend: str, repeats: int, cell: dict[str, int] = CELL,
                    iterations: int = ITERATIONS, device: str = "cpu") -> tuple[float, float, float]:
    """(µs per trial-iteration of batched IHT, µs per trial of the two stacked products, their ratio): medians.
    The products are numpy's on the CPU, torch's on another ``device`` (synchronised before each clock read)."""
    batch = build_batch(make_compressed_sensing, range(trials), **cell)
    d, m = cell["d"], cell["m"]
    rng = np.random.default_rng(0)
    A, x, r = batch.A, rng.standard_normal((trials, d, 1)), rng.standard_normal((trials, m, 1))
    matmul = np.matmul
    if device != "cpu":
        import torch

        A, x, r = (torch.tensor(a, device=device) for a in (A, x, r))  # copies: the batch arrays are read-only
        matmul = torch.matmul

    def sync() -> None:  # a GPU works asynchronously: wait for it before reading the clock
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
    runs, products = [], []
    with threadpool_limits(limits=1):
        for problem in batch.problems:
            problem.smoothness()  # an instance constant either path computes once: not an iteration cost
        for _ in range(repeats):
            engine = BatchedIHT(IHT(max_iter=iterations), backend=backend, device=device)
            sync()
            tic = time.perf_counter()
            engine.run(batch)
            runs.append((time.perf_counter() - tic) / sum(engine.active_sizes_))
            tic = time.perf_counter()
            for _ in range(iterations):
                matmul(A, x)
                matmul(A.swapaxes(-1, -2), r)
            sync()
            products.append((time.perf_counter() - tic) / (iterations * trials))
    run, product = statistics.median(runs), statistics.median(products)
    return run * 1e6, product * 1e6, run / product


def torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)  # a benchmark process of its own: one thread, as the grid's workers
    return 1


def report(grids: dict[tuple[str, bool], list[tuple[float, float]]],
           ratios: list[tuple[str, tuple[float, float, float]]], load: tuple[str, str]) -> str:
    lines = ["# Batched trials (issue #18)", "",
             f"Machine: {platform.processor() or platform.machine()}, nproc = {os.cpu_count()}, "
             f"load average before: {load[0]}, after: {load[1]} (1, 5, 15 min; the machine is shared with other "
             "jobs). Command: `.venv/bin/python -m benchmarks.batched`.", "",
             "## Full-size phase diagrams (n = 200, 15 x 15 cells, 20 trials)", "",
             "Wall time of the whole command (median of the runs, and their range), and its CPU time (all processes) "
             "divided by the number of cores. The target is judged on the median wall time.", "",
             "| solver | batched: wall (range), CPU/cores | one trial at a time: wall, CPU/cores | speed-up (wall) "
             "| target |",
             "|---|---|---|---|---|"]
    cores = os.cpu_count() or 1
    for solver in sorted({solver for solver, _ in grids}):
        runs = grids[solver, True]
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
        spread = f" ({min(w for w, _ in runs):.1f}–{max(w for w, _ in runs):.1f} s, {len(runs)} runs)"
        verdict = "met" if wall <= TARGET_GRID_S else "**missed**"
        if (solver, False) in grids:
            wall1, cpu1 = grids[solver, False][0]
            single, speedup = f"{wall1:.1f} s, {cpu1 / cores:.1f} s (1 run)", f"{wall1 / wall:.1f}x"
        else:
            single, speedup = "not run (--skip-per-trial)", "–"
        lines.append(f"| {solver} | {wall:.1f} s{spread}, {cpu / cores:.1f} s | {single} | {speedup} | "
                     f"<= {TARGET_GRID_S:g} s (wall): {verdict} |")
    lines += ["", "## Batched IHT: time per trial-iteration over its two batched matrix products", "",
              f"One cell, m = {CELL['m']}, d = {CELL['d']}, k = {CELL['k_star']}, {ITERATIONS} iterations "
              "(every trial runs them all), one thread; medians.", "",
              "| batch | µs per trial-iteration | µs per trial, A x and Aᵀr | ratio | target |",
              "|---|---|---|---|---|"]
    for label, (run, product, ratio) in ratios:
        verdict = "met" if ratio <= TARGET_RATIO else "**missed**"
        lines.append(f"| {label} | {run:.1f} | {product:.1f} | {ratio:.2f} | <= {TARGET_RATIO:g}: {verdict} |")
    return "\n".join(lines) + "\n"


def run(settings: Settings) -> list[Row]:
    """The ``make bench`` rows of issue #18's first two targets: the batched full-size n = 200 grid of IHT and of
    CoSaMP (wall time of the command, target ≤ 30 s), and batched IHT's time per trial-iteration over its two
    stacked products in a grid cell of 20 trials (target ≤ 1.5). The one-trial grids and the torch row are in
    ``python -m benchmarks.batched`` (minutes more)."""
    rows = []
    grid = settings.pick(GRID, SMOKE_GRID)
    for solver in ("iht", "cosamp"):
        wall, cpu = grid_seconds(solver, True, settings.scratch, grid)
        cores = os.cpu_count() or 1
        rows.append(Row(GROUP, f"batched phase diagram of {solver}, " + ", ".join(grid[1:5]), wall, "s",
                        threshold=TARGET_GRID_S,
                        note=f"whole command, {cores} cores; CPU time / cores {cpu / cores:.1f} s; load average "
                             f"{load_average()}"))
    cell = settings.pick(CELL, dict(m=8, d=16, k_star=4))
    iterations = settings.pick(ITERATIONS, 5)
    run_us, product_us, _ = iteration_ratio(20, "numpy", max(1, min(settings.repeats, 5)), cell, iterations)
    rows.append(Row(GROUP, f"batched IHT, µs per trial-iteration over its two stacked products (20 trials, "
                           f"m = {cell['m']}, d = {cell['d']}, k = {cell['k_star']})", run_us, "µs",
                    reference=product_us, threshold=TARGET_RATIO,
                    note="one BLAS thread; the reference is A x and Aᵀr of the same stack"))
    return rows


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the iteration-cost runs (median)")
    parser.add_argument("--skip-per-trial", action="store_true", help="skip the one-trial-at-a-time grids")
    parser.add_argument("--grid-repeats", type=int, default=3,
                        help="runs of each batched grid (median and range; the one-trial grids run once)")
    parser.add_argument("--solvers", default="iht,cosamp", help="comma-separated solvers of the grid part")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    before = load_average()
    grids = {}
    with tempfile.TemporaryDirectory() as scratch:
        for solver in args.solvers.split(","):
            for batched in (True,) if args.skip_per_trial else (True, False):
                for _ in range(args.grid_repeats if batched else 1):
                    grids.setdefault((solver, batched), []).append(grid_seconds(solver, batched, Path(scratch)))
                    log.info("%s, batched=%s: %.1f s wall, %.1f s CPU", solver, batched,
                             *grids[solver, batched][-1])
    ratios = [("numpy, 20 trials (a grid cell)", iteration_ratio(20, "numpy", args.repeats)),
              ("numpy, 100 trials", iteration_ratio(100, "numpy", args.repeats))]
    if torch_threads() is not None:
        ratios.append(("torch (CPU, float64), 20 trials", iteration_ratio(20, "torch", args.repeats)))
    text = report(grids, ratios, (before, load_average()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # the measured tables replace the part between the markers; notes written around them are kept
    old = args.out.read_text() if args.out.exists() else ""
    if MARK[0] in old and MARK[1] in old:
        text = old[:old.index(MARK[0]) + len(MARK[0])] + "\n" + text + old[old.index(MARK[1]):]
    else:
        text = f"{MARK[0]}\n{text}{MARK[1]}\n"
    args.out.write_text(text)
    log.info("wrote %s\n%s", args.out, text)


if __name__ == "__main__":
    main()
