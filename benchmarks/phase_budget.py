"""Target 5: a full-size phase diagram per solver within 10 minutes on the cores of this machine.

Each diagram is one real command line, ``obsbench experiment=phase_transition solver=<s> problem.d=200
experiment.deltas=15 experiment.rhos=15 experiment.trials=20`` (4500 solves; joblib workers on every core,
one BLAS thread each), in an empty results root so nothing is resumed. Topk-I-OBS gets
``newton_damping=1e-3`` because AᵀA is singular when m < d. The wall time includes start-up, validation, the
grid, the 50% curve fits and the figures.
"""

from __future__ import annotations

import logging
import os

from benchmarks.cli import run_obsbench
from benchmarks.harness import Settings
from benchmarks.report import Row

log = logging.getLogger(__name__)

GROUP = "5 phase-diagram budget"
BUDGET_S = 600.0
#: solver -> extra overrides
SOLVERS = {"basis_pursuit": [], "iht": [], "cosamp": [], "topk_iobs": ["newton_damping=1e-3"]}
SMOKE_SOLVERS = {"iht": []}
FULL_GRID = dict(d=200, deltas=15, rhos=15, trials=20)
SMOKE_GRID = dict(d=16, deltas=2, rhos=2, trials=2)


def command(solver: str, extra: list[str], grid: dict[str, int]) -> list[str]:
    """The ``obsbench`` arguments of one phase diagram."""
    return ["experiment=phase_transition", f"solver={solver}", f"problem.d={grid['d']}",
            f"experiment.deltas={grid['deltas']}", f"experiment.rhos={grid['rhos']}",
            f"experiment.trials={grid['trials']}", "experiment.progress=false", *extra]


def run(settings: Settings) -> list[Row]:
    """One row per solver: wall time of the whole diagram, target ≤ 600 s."""
    grid = settings.pick(FULL_GRID, SMOKE_GRID)
    size = f"d={grid['d']}, {grid['deltas']}x{grid['rhos']} grid, {grid['trials']} trials"
    rows = []
    for solver, extra in settings.pick(SOLVERS, SMOKE_SOLVERS).items():
        outcome = run_obsbench(command(solver, extra, grid), settings.scratch / f"phase_{solver}",
                               timeout=4 * BUDGET_S)
        note = f"{os.cpu_count()} cores, joblib workers with one BLAS thread each"
        if not outcome.ok:
            note += f"; FAILED (exit {outcome.returncode}): {outcome.tail.splitlines()[-1] if outcome.tail else ''}"
        rows.append(Row(GROUP, f"phase diagram of {solver}, {size}", outcome.seconds, "s", threshold=BUDGET_S,
                        note=note))
        log.info("phase diagram of %s: %.1f s", solver, outcome.seconds)
    return rows
