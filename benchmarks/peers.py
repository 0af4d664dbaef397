"""Target 2: obsbench's greedy and hard-thresholding solvers against peer Python implementations.

Same instances for everyone: noiseless Gaussian compressed sensing (A ~ N(0, 1/m)), k*-sparse Gaussian x*, the
true k given to every method. Success is a final relative error ≤ 1e-4. Peers, each with the documented API
and float64 numpy callbacks:

- OMP: scikit-learn's ``OrthogonalMatchingPursuit`` (fit_intercept=False).
- IHT, HTP, CoSaMP: skscope's ``IHTSolver``, ``HTPSolver`` and ``GraspSolver`` (GraSP is CoSaMP for a general
  loss; on least squares it is CoSaMP), given the objective ½‖Ax − y‖² and its gradient; and abess's
  ``LinearRegression`` (splicing, best-subset of size k), which solves the same ℓ0-constrained problem.
  abess stops splicing when the loss decrease falls below an absolute threshold, which a noiseless y of unit
  scale never exceeds; it is given y·10⁴ and its coefficients are divided by 10⁴ (the problem is
  scale-equivariant), without which it stops on a wrong support.

IHT runs with η = 0.5 in both implementations (the unit step of the RIP analyses diverges at these sizes and
η = 1/L needs more than 500 iterations); HTP with η = 1 in both. obsbench's time is the solver clock
(``Result.time_s``: init and steps), the same work a peer call does; the note also gives the wall time of
``solver.run``, which adds the harness's per-iteration trace (objective, error to x*, support) and the
theory constants of the instance. Skscope and abess are an optional extra (``pip install -e '.[bench]'``);
a missing peer is reported as such.
"""

from __future__ import annotations

import functools
import importlib
import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.harness import Settings, relative_error, wall_time
from benchmarks.report import Row
from problems.base import LeastSquaresProblem
from problems.sensing import make_compressed_sensing
from solvers.base import make_solver

log = logging.getLogger(__name__)

GROUP = "2 peers"
SIZES = [(200, 1000, 20), (500, 2000, 50), (1000, 5000, 100)]
SMOKE_SIZES = [(40, 120, 4)]
SUCCESS_TOL = 1e-4
ABESS_Y_SCALE = 1e4
#: obsbench solver -> (its parameters, the peers that implement the same algorithm or solve the same problem)
COMPARISONS = {
    "omp": ({}, ("scikit-learn OMP",)),
    "iht": (dict(step_size=0.5), ("skscope IHT", "abess")),
    "htp": (dict(step_size=1.0), ("skscope HTP", "abess")),
    "cosamp": ({}, ("skscope GraSP", "abess")),
}

Solve = Callable[[LeastSquaresProblem, int], np.ndarray]


@dataclass
class Record:
    """Times (s) and successes of one implementation over the seeds of one size."""

    seconds: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.median(self.seconds)) if self.seconds else float("nan")

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes)) if self.successes else float("nan")


def sklearn_omp(problem: LeastSquaresProblem, k: int) -> np.ndarray:
    from sklearn.linear_model import OrthogonalMatchingPursuit

    return OrthogonalMatchingPursuit(n_nonzero_coefs=k, fit_intercept=False).fit(problem.A, problem.y).coef_


def skscope_solver(class_name: str, **params: float) -> Solve | None:
    """A skscope solver class run on ½‖Ax − y‖² with a numpy gradient; None when skscope is not installed."""
    try:
        skscope = importlib.import_module("skscope")
    except ImportError:
        return None

    def solve(problem: LeastSquaresProblem, k: int) -> np.ndarray:
        A, y = problem.A, problem.y

        def objective(x: np.ndarray) -> float:
            return 0.5 * float(np.sum((A @ x - y) ** 2))

        def gradient(x: np.ndarray) -> np.ndarray:
            return A.T @ (A @ x - y)

        solver = getattr(skscope, class_name)(problem.d, sparsity=k, **params)
        return np.asarray(solver.solve(objective, gradient=gradient), dtype=float)

    return solve


def abess_solver() -> Solve | None:
    """abess best-subset regression of size k (see the module notes on the scaling); None if not installed."""
    try:
        abess = importlib.import_module("abess")
    except ImportError:
        return None

    def solve(problem: LeastSquaresProblem, k: int) -> np.ndarray:
        model = abess.LinearRegression(support_size=[k], fit_intercept=False)
        return model.fit(problem.A, problem.y * ABESS_Y_SCALE).coef_ / ABESS_Y_SCALE

    return solve


def peer_solvers() -> dict[str, Solve | None]:
    """Every peer implementation by name (None: not installed)."""
    return {"scikit-learn OMP": sklearn_omp,
            "skscope IHT": skscope_solver("IHTSolver", step_size=COMPARISONS["iht"][0]["step_size"]),
            "skscope HTP": skscope_solver("HTPSolver", step_size=COMPARISONS["htp"][0]["step_size"]),
            "skscope GraSP": skscope_solver("GraspSolver"),
            "abess": abess_solver()}


def run(settings: Settings) -> list[Row]:
    """One row per (obsbench solver, size): time over the fastest peer at equal success, target ≤ 1.0."""
    peers = peer_solvers()
    sizes, seeds = settings.pick(SIZES, SMOKE_SIZES), settings.pick(5, 1)
    rows = []
    with threadpool_limits(limits=settings.blas_threads):
        warm_up(peers)
        for m, d, k in sizes:
            records = measure_size(m, d, k, seeds, peers, settings.pick(3, 1))
            rows += [comparison_row(name, f"{m}x{d}, k={k}", records, peers) for name in COMPARISONS]
    return rows


def warm_up(peers: dict[str, Solve | None]) -> None:
    """One unrecorded call of everything on a tiny instance (imports, JIT set-up, caches)."""
    problem = make_compressed_sensing(m=20, d=40, k_star=2, seed=0)
    for name, (params, _) in COMPARISONS.items():
        make_solver(name, **params).run(problem)
    for solve in peers.values():
        if solve is not None:
            solve(problem, 2)


def measure_size(m: int, d: int, k: int, seeds: int, peers: dict[str, Solve | None],
                 repeats: int) -> dict[str, Record]:
    """Run every implementation on every seed, ``repeats`` times each, interleaved within a seed."""
    records: dict[str, Record] = {}
    for seed in range(seeds):
        problem = make_compressed_sensing(m=m, d=d, k_star=k, seed=seed)
        for repeat in range(repeats):
            for name, (params, _) in COMPARISONS.items():
                wall, result = wall_time(functools.partial(make_solver(name, **params).run, problem))
                _record(records, name, result.time_s, wall, relative_error(result.x, problem.x_star), repeat)
            for name, solve in peers.items():
                if solve is not None:
                    wall, x = wall_time(functools.partial(solve, problem, k))
                    _record(records, name, wall, wall, relative_error(x, problem.x_star), repeat)
    return records


def _record(records: dict[str, Record], name: str, seconds: float, wall: float, error: float, repeat: int) -> None:
    record = records.setdefault(name, Record())
    record.seconds.append(seconds)
    record.wall.append(wall)
    if repeat == 0:  # the result of a seed does not change with the repeat
        record.successes.append(error <= SUCCESS_TOL)


def comparison_row(name: str, size: str, records: dict[str, Record], peers: dict[str, Solve | None]) -> Row:
    """Our median time against the fastest peer whose success rate is at least ours."""
    ours = records[name]
    candidates = {peer: records[peer] for peer in COMPARISONS[name][1] if peers.get(peer) is not None}
    described = "; ".join(f"{peer} {rec.median * 1e3:.3g} ms ({rec.success_rate:.0%})"
                          for peer, rec in candidates.items())
    missing = [peer for peer in COMPARISONS[name][1] if peers.get(peer) is None]
    note = (f"obsbench success {ours.success_rate:.0%}, wall incl. trace {np.median(ours.wall) * 1e3:.3g} ms; "
            f"peers: {described or 'none'}" + (f"; peer not installed: {', '.join(missing)}" if missing else ""))
    if not candidates:
        return Row(GROUP, f"{name.upper()} vs fastest peer, {size}", ours.median * 1e3, "ms", note=note)
    equal = {peer: rec for peer, rec in candidates.items() if rec.success_rate >= ours.success_rate}
    if not equal:
        note += "; no peer reaches our success rate: compared with the fastest peer anyway"
    fastest = min((equal or candidates).items(), key=lambda item: item[1].median)
    return Row(GROUP, f"{name.upper()} vs {fastest[0]}, {size}", ours.median * 1e3, "ms", fastest[1].median * 1e3,
               1.0, note=note)
