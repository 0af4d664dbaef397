"""Theory as an observer: what a phase-diagram cell saves by running its solves without the bound tracker.

Phase-diagram cells keep only each trial's final row, so they run the solvers bare (`experiments.kinds.phase_grid`);
runs stored by the runner attach `solvers.bounds.BoundTracker`, which evaluates every solver's theorems at every
iteration. Before the redesign the loop itself called the theory, so every cell paid it. Measured: 60
compressed-sensing instances (m = 100, d = 200, k* = 5 and 10, 30 seeds) × IHT and CoSaMP, the whole batch bare
against the same batch observed (each problem built once per round, so the per-instance constants the theorems
need are computed in every observed round, as they are in a cell), interleaved, one BLAS thread. Reported
without a target: the ratio bare/observed is the time a cell keeps.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from benchmarks.harness import Settings, time_interleaved
from benchmarks.report import Row
from problems.sensing import make_compressed_sensing
from solvers.base import make_solver
from solvers.bounds import observed_run

GROUP = "5 observer cost"


def _batch(observe: bool, seeds: int) -> None:
    for seed in range(seeds):
        for k_star in (5, 10):
            problem = make_compressed_sensing(m=100, d=200, k_star=k_star, seed=seed)
            for name in ("iht", "cosamp"):
                solver = make_solver(name)
                observed_run(solver, problem) if observe else solver.run(problem)


def run(settings: Settings) -> list[Row]:
    seeds = settings.pick(30, 2)
    with threadpool_limits(limits=settings.blas_threads, user_api="blas"):
        timings = time_interleaved({"bare": lambda: _batch(False, seeds), "observed": lambda: _batch(True, seeds)},
                                   repeats=max(1, min(settings.repeats, 5)))
    bare, observed = timings["bare"].median, timings["observed"].median
    return [Row(GROUP, f"{2 * seeds} CS instances x IHT, CoSaMP: bare runs (phase cells) / observed runs",
                bare, "s", reference=observed,
                note=f"bare {bare:.3f} s, with the bound tracker {observed:.3f} s (medians of interleaved rounds)")]
