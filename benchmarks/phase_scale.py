"""Issue #18, target 3: an n = 1000 phase diagram (15 x 15 cells, 20 trials) per greedy solver and basis pursuit
within 10 minutes on the cores of this machine, with each solver's step at its default and tuned.

Two parts, both real ``obsbench`` command lines in an empty results root:

1. **Step tuning (pilot).** For the solvers with a step rule (IHT: ``step_scale``, HTP: ``step_scale``, NIHT:
   ``c`` x ``kappa``), a sweep of the step settings on a small diagram (n = 200, 10 x 10 cells, 10 trials; the
   n = 1000 instances are other instances) picks the setting with the highest mean
   success over the cells, as Maleki & Donoho tuned iterative thresholding over phase diagrams ("Optimally tuned
   iterative reconstruction algorithms for compressed sensing", IEEE J. Sel. Top. Signal Process. 2010). Ties
   keep the default. The choice uses success, i.e. x*, so it is a property of the problem suite (Gaussian CS),
   not of an instance: per-instance tuning without x* is ``solver=iht_tuned``.
2. **n = 1000 diagrams**, one command per solver (default and tuned step), each timed whole: start-up, the grid
   (joblib workers on every core, batched trials where the solver has a batched twin), the fits and figures.
   The 50% transition with its 95% interval per δ comes from the command's ``phase_transition.csv``.

Writes ``phase_scale.csv`` (every diagram's ρ₅₀ and interval per δ, its wall time), ``phase_scale.md`` (the
README's table: ρ₅₀ [95% interval] at five δ) and ``phase_scale.png`` (every 50% curve with its band and the ℓ1
weak threshold) beside the benchmark tables.

    .venv/bin/python -m benchmarks.phase_scale --solvers htp,niht --scratch /tmp/scale --out /tmp/scale/out
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmarks.cli import run_obsbench
from benchmarks.harness import Settings
from benchmarks.report import Row

log = logging.getLogger(__name__)

GROUP = "8 phase diagrams at n = 1000"
BUDGET_S = 600.0
#: A diagram's wall-clock limit: a guard against a hang, not a target. CoSaMP's n = 1000 diagram takes hours on
#: 2 cores (its failing cells refit up to m columns 200 times per trial), so an hour (the earlier limit) killed it.
DIAGRAM_TIMEOUT_S = 6 * 3600.0
FULL_GRID = dict(d=1000, deltas=15, rhos=15, trials=20)
SMOKE_GRID = dict(d=16, deltas=2, rhos=2, trials=2)
PILOT_GRID = dict(d=200, deltas=10, rhos=10, trials=10)
SMOKE_PILOT_GRID = dict(d=16, deltas=2, rhos=2, trials=2)
#: solver -> its step settings to tune over (the default first: it wins ties)
STEP_GRIDS: dict[str, dict[str, list[float]]] = {
    "iht": {"step_scale": [1.0, 0.5, 1.5, 1.9]},
    "htp": {"step_scale": [1.0, 0.5, 1.5, 1.9]},
    "niht": {"c": [0.01, 0.1], "kappa": [2.0, 4.0]},
}
SOLVERS = ("iht", "niht", "htp", "cosamp", "sp", "omp", "basis_pursuit")
SMOKE_SOLVERS = ("iht",)


def grid_args(grid: dict[str, int]) -> list[str]:
    """The ``obsbench`` arguments of a phase diagram of this size."""
    return ["experiment=phase_transition", f"problem.d={grid['d']}", f"experiment.deltas={grid['deltas']}",
            f"experiment.rhos={grid['rhos']}", f"experiment.trials={grid['trials']}", "experiment.progress=false"]


def sweep_table(root: Path, name: str) -> pd.DataFrame:
    """The table ``name`` of the (only) sweep folder under a run's outputs root."""
    paths = sorted((root / "outputs").glob(f"multirun/*/*/{name}"))
    if not paths:
        raise FileNotFoundError(f"no {name} under {root}")
    return pd.read_csv(paths[-1])


def tuned_setting(solver: str, settings: Settings) -> dict[str, float]:
    """The step setting of ``solver`` with the highest mean success over the pilot diagram (ties: the first,
    i.e. the default)."""
    grid = settings.pick(PILOT_GRID, SMOKE_PILOT_GRID)
    root = settings.scratch / f"pilot_{solver}"
    sweep = [f"solver.{key}=" + ",".join(f"{value:g}" for value in values)
             for key, values in STEP_GRIDS[solver].items()]
    outcome = run_obsbench(["-m", *grid_args(grid), f"solver={solver}", *sweep], root, timeout=4 * BUDGET_S)
    if not outcome.ok:
        raise RuntimeError(f"pilot of {solver} failed: {outcome.tail.splitlines()[-1] if outcome.tail else ''}")
    cells = sweep_table(root, "phase_cells.csv")
    success = cells.groupby("group")["success_rate"].mean()
    best_score, best = -1.0, {key: values[0] for key, values in STEP_GRIDS[solver].items()}
    for point in _points(STEP_GRIDS[solver]):
        label = _label(cells, point)
        score = float(success.get(label, float("nan")))
        log.info("pilot %s %s: mean success %.3f", solver, point, score)
        if score > best_score + 1e-12:
            best_score, best = score, point
    return best


def _points(grid: dict[str, list[float]]) -> list[dict[str, float]]:
    points: list[dict[str, float]] = [{}]
    for key, values in grid.items():
        points = [{**point, key: value} for point in points for value in values]
    return points


def _label(cells: pd.DataFrame, point: dict[str, float]) -> str:
    """The configuration label of the pilot sweep with these step values (``group`` names the parameters that
    vary, e.g. ``iht step_scale=1.5``)."""
    for label in cells["group"].unique():
        if all(f"{key}={value:g}" in label for key, value in point.items()):
            return str(label)
    return ""


def overrides(point: dict[str, float]) -> list[str]:
    return [f"solver.{key}={value:g}" for key, value in point.items()]


def diagram(solver: str, extra: Sequence[str], label: str, settings: Settings) -> tuple[Row, pd.DataFrame]:
    """Run one n = 1000 diagram; its benchmark row and its transitions (``label`` in a ``setting`` column)."""
    grid = settings.pick(FULL_GRID, SMOKE_GRID)
    root = settings.scratch / f"n{grid['d']}_{label.replace(' ', '_').replace('=', '')}"
    outcome = run_obsbench([*grid_args(grid), f"solver={solver}", *extra], root, timeout=DIAGRAM_TIMEOUT_S)
    note = f"{os.cpu_count()} cores, joblib workers with one BLAS thread each"
    curves = pd.DataFrame()
    if outcome.ok:
        curves = sweep_table(root, "phase_transition.csv").assign(setting=label, seconds=outcome.seconds)
    else:  # no diagram: no measurement to hold against the budget (a row without a value is "n/a")
        note += (f"; FAILED after {outcome.seconds:.0f} s (exit {outcome.returncode}): "
                 f"{outcome.tail.splitlines()[-1] if outcome.tail else ''}")
    size = f"d={grid['d']}, {grid['deltas']}x{grid['rhos']} grid, {grid['trials']} trials"
    log.info("n = %d diagram of %s: %.1f s", grid["d"], label, outcome.seconds)
    seconds = outcome.seconds if outcome.ok else float("nan")
    return Row(GROUP, f"phase diagram of {label}, {size}", seconds, "s", threshold=BUDGET_S, note=note), curves


def run(settings: Settings, solvers: Sequence[str] | None = None) -> list[Row]:
    """One row per diagram (default step, then tuned step where the solver has one); ``phase_scale.csv`` and
    ``phase_scale.png``, rewritten after every diagram (a stopped run keeps the diagrams it finished). A tuned
    setting equal to the default is not run twice: its row repeats the default's diagram and says so."""
    rows, curves = [], []
    for solver in solvers or settings.pick(SOLVERS, SMOKE_SOLVERS):
        row, table = diagram(solver, [], solver, settings)
        rows.append(row)
        curves.append(table)
        _write(curves, settings)
        if solver in STEP_GRIDS:
            point = tuned_setting(solver, settings)
            is_default = point == {key: values[0] for key, values in STEP_GRIDS[solver].items()}
            label = (f"{solver} tuned ({', '.join(f'{key}={value:g}' for key, value in point.items())}"
                     f"{'; the default' if is_default else ''})")
            if is_default:
                row = dataclasses.replace(row, target=row.target.replace(f"of {solver},", f"of {label},"),
                                          note=row.note + "; the pilot kept the default step: the default's diagram")
                table = table.assign(setting=label) if not table.empty else table
            else:
                row, table = diagram(solver, overrides(point), label, settings)
            rows.append(row)
            curves.append(table)
            _write(curves, settings)
    return rows


#: δ columns of the README's transition table (cell centres of the 15-column grid)
TABLE_DELTAS = (0.1, 0.3, 0.5, 0.7, 0.9)


def transition_table(table: pd.DataFrame, deltas: Sequence[float] = TABLE_DELTAS) -> str:
    """Markdown: per diagram (``setting``), its wall time and ρ₅₀ [95% interval] at the δ columns nearest
    ``deltas``."""
    lines = ["| diagram | wall time | " + " | ".join(f"ρ₅₀ at δ = {d:g}" for d in deltas) + " |",
             "|---|---|" + "---|" * len(deltas)]
    for setting, curve in table.groupby("setting", sort=False):
        cells = []
        for delta in deltas:
            row = curve.iloc[(curve["delta"] - delta).abs().argmin()]
            cells.append(f"{row['rho50']:.3f} [{row['low']:.3f}, {row['high']:.3f}]" if pd.notna(row["rho50"])
                         else "—")
        lines.append(f"| {setting} | {curve['seconds'].iloc[0]:.0f} s | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write(curves: list[pd.DataFrame], settings: Settings) -> None:
    settings.out.mkdir(parents=True, exist_ok=True)
    table = pd.concat(curves, ignore_index=True)
    table.to_csv(settings.out / "phase_scale.csv", index=False)
    if not table.empty:
        (settings.out / "phase_scale.md").write_text(transition_table(table))
        figure = transition_figure(table, settings.pick(FULL_GRID, SMOKE_GRID))
        figure.savefig(settings.out / "phase_scale.png", dpi=150, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(figure)


def transition_figure(table: pd.DataFrame, grid: dict[str, int]):
    """Every diagram's 50% curve with its 95% band (a solver's tuned step dashed beside its default) and the ℓ1
    weak threshold: `plots.phase.transition_comparison_figure` with one configuration per ``setting``."""
    from experiments.analysis.donoho_tanner import weak_threshold_curve
    from plots.phase import transition_comparison_figure

    curves = table.assign(group=table["setting"])
    figure = transition_comparison_figure(curves, weak_threshold_curve(), rule="relative error <= 0.0001")
    ax = figure.axes[0]
    ax.set_title(f"{ax.get_title()}; d = {grid['d']}, {grid['deltas']} x {grid['rhos']} cells, "
                 f"{grid['trials']} trials each")
    return figure


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.phase_scale --solvers htp,niht --scratch DIR``: some of the group's diagrams, keeping
    each diagram's results root and figures under ``--scratch`` (``make bench`` runs them all in a temporary
    folder); writes ``benchmarks.md``/``.csv`` and ``phase_scale.csv`` into ``--out``."""
    from benchmarks.report import Machine, markdown_table, write_csv, write_markdown

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solvers", default=",".join(SOLVERS), help="comma-separated solvers")
    parser.add_argument("--scratch", type=Path, required=True, help="folder of the diagrams' roots (kept)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the tables")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = Settings(smoke=False, repeats=1, blas_threads=1, scratch=args.scratch, out=args.out)
    rows = run(settings, args.solvers.split(","))
    machine = Machine.current(1)
    write_csv(rows, machine, args.out / "benchmarks.csv")
    write_markdown(rows, machine, args.out / "benchmarks.md", "python -m benchmarks.phase_scale " +
                   " ".join(argv or []), sum(row.value for row in rows if not math.isnan(row.value)))
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
