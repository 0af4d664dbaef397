"""Target 7: time per solve against the dimension d for every solver, on log-log axes, with the fitted exponent.

Instances: noiseless Gaussian compressed sensing with m = d/5 and k* = d/50 (δ = 0.2, ρ = 0.1, the regime of
the peer comparison), three seeds per d; the time is the solver clock (``Result.time_s``), median over seeds.
The exponent β is the least-squares slope of log t against log d. Topk-I-OBS (dense d×d Hessian, O(d³) once)
and basis pursuit (an LP in 2d variables) stop at d = 2000. Writes ``scaling.png`` next to the tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.harness import Settings, fit_exponent, relative_error
from benchmarks.report import Row
from problems.sensing import make_compressed_sensing
from solvers.base import make_solver

log = logging.getLogger(__name__)

GROUP = "7 scaling"
DIMS = [250, 500, 1000, 2000, 4000]
SMOKE_DIMS = [50, 100]
#: solver -> (parameters, largest d)
SOLVERS = {
    "iht": (dict(step_size=0.5), 4000), "niht": ({}, 4000), "htp": ({}, 4000), "cosamp": ({}, 4000),
    "sp": ({}, 4000), "omp": ({}, 4000), "topk_iobs": (dict(damping=1e-3), 2000), "basis_pursuit": ({}, 2000),
}
SUCCESS_TOL = 1e-4


def solve_times(name: str, params: dict, dims: list[int], seeds: int) -> tuple[list[float], list[float]]:
    """Median solver-clock time and success rate at every d."""
    times, success = [], []
    for d in dims:
        seconds, ok = [], []
        for seed in range(seeds):
            problem = make_compressed_sensing(m=d // 5, d=d, k_star=max(1, d // 50), seed=seed)
            result = make_solver(name, **params).run(problem)
            seconds.append(result.time_s)
            ok.append(relative_error(result.x, problem.x_star) <= SUCCESS_TOL)
        times.append(float(np.median(seconds)))
        success.append(float(np.mean(ok)))
    return times, success


def scaling_figure(curves: dict[str, tuple[list[int], list[float]]], path: Path) -> Path:
    """Time per solve against d, log-log, one line per solver labelled with its exponent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    for name, (dims, times) in curves.items():
        axes.loglog(dims, times, marker="o", label=f"{name} (β = {fit_exponent(dims, times):.2f})")
    axes.set(xlabel="d (m = d/5, k* = d/50)", ylabel="time per solve (s)", title="obsbench: time per solve vs d")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def run(settings: Settings) -> list[Row]:
    """One row per solver: the fitted exponent (reported, no target), times per d in the note."""
    all_dims, seeds = settings.pick(DIMS, SMOKE_DIMS), settings.pick(3, 1)
    rows, curves = [], {}
    with threadpool_limits(limits=settings.blas_threads):
        for name, (params, largest) in SOLVERS.items():
            dims = [d for d in all_dims if d <= largest]
            times, success = solve_times(name, params, dims, seeds)
            curves[name] = (dims, times)
            listed = ", ".join(f"{d}: {t * 1e3:.3g} ms" for d, t in zip(dims, times))
            rows.append(Row(GROUP, f"{name}: time per solve vs d, fitted exponent", fit_exponent(dims, times), "",
                            note=f"d = {listed}; success at d={dims[-1]}: {success[-1]:.0%}"))
            log.info("%s: exponent %.2f (%s)", name, rows[-1].value, listed)
    scaling_figure(curves, settings.out / "scaling.png")
    return rows
