"""The stall rule (``solver.stall_window``, GAGA's residual-rate stopping) against the plain ``max_iter`` budget:
what it saves and what it costs a phase diagram. Run by hand; writes ``benchmarks/results/stall_rule.md``.

    .venv/bin/python -m benchmarks.stall_rule            # both parts (~6 min on 2 cores)
    .venv/bin/python -m benchmarks.stall_rule --replay   # part 2 only (~2 min)

1. **Grids.** The full-size n = 200 diagram (15 x 15 cells, 20 trials; the real command line in an empty results
   root) of IHT and CoSaMP with the rule off and on (w = 15, ρ = 0.999): wall time, successes, the cells whose
   success count changes.
2. **Replay.** Full traces of IHT and NIHT (one trial at a time) on cells near their transitions, 12 seeds each;
   for every window w and rate ρ of a grid, the successes the rule would have ended before they succeeded, and
   the share of the failing trials' iterations it would have saved.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.cli import run_obsbench
from benchmarks.phase_scale import sweep_table
from problems.sensing import make_compressed_sensing
from solvers.base import stalled
from solvers.hard_thresholding import IHT, NIHT

OUT = Path(__file__).resolve().parent / "results" / "stall_rule.md"
GRID = ("-m", "experiment=phase_transition", "problem.d=200", "experiment.deltas=15", "experiment.rhos=15",
        "experiment.trials=20", "experiment.progress=false")
RULE = ("solver.stall_window=15", "solver.stall_rate=0.999")
#: (m, k) near the transitions of IHT and NIHT at d = 200
CELLS = [(140, 51), (140, 42), (193, 96), (180, 66), (100, 30), (47, 5), (20, 2), (167, 72)]
WINDOWS = (15, 30, 50, 100, 200)
RATES = (0.999, 0.9999, 0.99999)


def grids(scratch: Path) -> str:
    """Part 1 as a markdown table."""
    lines = ["| solver | wall time, off → on | successes, off → on | cells that change |", "|---|---|---|---|"]
    for solver in ("iht", "cosamp"):
        runs = {}
        for label, extra in (("off", ()), ("on", RULE)):
            outcome = run_obsbench([*GRID, f"solver={solver}", *extra], scratch / f"{solver}_{label}", timeout=1800)
            if not outcome.ok:
                raise RuntimeError(f"{solver} ({label}) failed: {outcome.tail}")
            runs[label] = (outcome.seconds, sweep_table(scratch / f"{solver}_{label}", "phase_cells.csv"))
        (t_off, off), (t_on, on) = runs["off"], runs["on"]
        both = off.merge(on, on=["delta", "rho"], suffixes=("", "_on"))
        changed = int((both["successes"] != both["successes_on"]).sum())
        lines.append(f"| {solver} | {t_off:.1f} s → {t_on:.1f} s | {both['successes'].sum()} → "
                     f"{both['successes_on'].sum()} | {changed} of {len(both)} |")
    return "\n".join(lines)


def first_stop(objective: np.ndarray, window: int, rate: float) -> int | None:
    """The iteration at which the rule would end a run with these objectives f(x_0), f(x_1), ... (None: never)."""
    t = np.arange(window, objective.size)
    hits = np.flatnonzero(stalled(objective[t], objective[t - window], rate, window))
    return int(t[hits[0]]) if hits.size else None


def replay() -> str:
    """Part 2 as a markdown table."""
    lines = ["| solver | successes / failures | window | rate | successes lost | failing iterations saved |",
             "|---|---|---|---|---|---|"]
    for cls in (IHT, NIHT):
        wins, losses = [], []
        for m, k in CELLS:
            for trial in range(12):
                result = cls(k=k).run(make_compressed_sensing(m=m, d=200, k_star=k, seed=trial + 17 * k))
                objective = pd.DataFrame(result.trace)["objective"].to_numpy()
                (wins if result.trace[-1]["rel_error"] <= 1e-4 else losses).append(objective)
        for window in WINDOWS:
            for rate in RATES:
                lost = sum(first_stop(f, window, rate) is not None for f in wins)
                saved = [(f.size - 1 - stop) / (f.size - 1) if (stop := first_stop(f, window, rate)) else 0.0
                         for f in losses]
                lines.append(f"| {cls.name} | {len(wins)} / {len(losses)} | {window} | {rate:g} | {lost} | "
                             f"{np.mean(saved) if saved else 0:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", action="store_true", help="part 2 only")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    parts = ["# The stall rule against max_iter (`python -m benchmarks.stall_rule`)", ""]
    if not args.replay:
        with tempfile.TemporaryDirectory() as scratch:
            parts += ["## Full-size n = 200 diagrams, rule off and on (w = 15, ρ = 0.999)", "", grids(Path(scratch)),
                      ""]
    parts += ["## Replayed on full traces (d = 200, 8 cells near the transitions x 12 seeds)", "", replay(), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts))
    print("\n".join(parts))


if __name__ == "__main__":
    main()
