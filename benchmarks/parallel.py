"""Target 6: parallel efficiency of a sweep with the joblib launcher.

The same 16-job sweep, ``obsbench -m solver=iht seed='range(16)'`` on equal jobs (IHT for a fixed number of
iterations on a 400×2000 instance, whose matrix fits in cache; ``solver.tol=1e-300`` and the short step
0.05/L keep every job from reaching an exact fixed point, so all of them run to ``max_iter``),
runs once with Hydra's basic launcher (serial, in process) and once with ``hydra/launcher=joblib
hydra.launcher.n_jobs=2``. Both runs use one BLAS thread per job (``OPENBLAS_NUM_THREADS=1`` etc. for the
serial run; joblib's loky workers limit their BLAS pools to cpu_count // n_jobs threads), so the ratio
measures the launcher, not BLAS threading. Target: joblib time ≤ 0.6 × serial time.

The same two sweeps with one-iteration jobs measure the fixed cost of a sweep (process start, Hydra composing
every sweep point in the main process, worker start-up, the end-of-sweep report); a reported row gives the
ratio of the work beyond that fixed cost. Two more rows: the BLAS threads threadpoolctl finds inside loky workers started the way the launcher starts
them (no oversubscription: ≤ cores / n_jobs), and the *machine's* ceiling for the same kind of work, the time
of two matrix-vector loops on this matrix size run in two warm loky workers over the time of running them one
after the other. A launcher cannot beat that ceiling; on a machine whose cores are busy with other work it
is well above 0.5.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_info, threadpool_limits

from benchmarks.cli import run_obsbench
from benchmarks.harness import Settings
from benchmarks.report import Row

log = logging.getLogger(__name__)

GROUP = "6 parallel sweep"
N_JOBS = 2
RATIO = 0.6
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
FULL_JOB = dict(jobs=16, m=400, d=2000, k=20, iterations=5000)
SMOKE_JOB = dict(jobs=2, m=20, d=40, k=2, iterations=5)
CEILING_PRODUCTS = dict(full=2000, smoke=10)


def sweep(job: dict[str, int], iterations: int | None = None) -> list[str]:
    """The ``obsbench -m`` arguments of the sweep of equal jobs (``iterations`` overrides the job's)."""
    return ["-m", "problem=cs_gaussian", "solver=iht", f"seed=range({job['jobs']})", f"problem.m={job['m']}",
            f"problem.d={job['d']}", f"problem.k_star={job['k']}", f"solver.max_iter={iterations or job['iterations']}",
            "solver.tol=1e-300", "solver.step_scale=0.05"]


def timed_sweeps(job: dict[str, int], settings: Settings, iterations: int | None = None,
                 tag: str = "") -> tuple[float, float, list[str]]:
    """Seconds of the sweep with the basic launcher (one BLAS thread) and with joblib, and the failed ones."""
    joblib_args = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={N_JOBS}"]
    serial = run_obsbench(sweep(job, iterations), settings.scratch / f"sweep_serial{tag}", env=ONE_THREAD)
    joblib = run_obsbench([*sweep(job, iterations), *joblib_args], settings.scratch / f"sweep_joblib{tag}")
    failed = [name + tag for name, outcome in (("serial", serial), ("joblib", joblib)) if not outcome.ok]
    return serial.seconds, joblib.seconds, failed


def worker_blas_threads() -> int:
    """The largest BLAS thread pool in this process (run inside a joblib worker)."""
    return max((info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"), default=0)


def product_loop(m: int, d: int, products: int) -> float:
    """Seconds of ``products`` pairs A @ x, A.T @ r on a random m×d matrix, one BLAS thread."""
    rng = np.random.default_rng(0)
    A, x, r = rng.standard_normal((m, d)), rng.standard_normal(d), rng.standard_normal(m)
    with threadpool_limits(limits=1):
        tic = time.perf_counter()
        for _ in range(products):
            A @ x, A.T @ r
        return time.perf_counter() - tic


def machine_ceiling(m: int, d: int, products: int) -> tuple[float, float]:
    """Wall time of two product loops in two warm loky workers, and of the same two loops one after the other."""
    parallel = Parallel(n_jobs=N_JOBS, backend="loky")
    parallel(delayed(worker_blas_threads)() for _ in range(N_JOBS))  # start the workers before timing
    tic = time.perf_counter()
    parallel(delayed(product_loop)(m, d, products) for _ in range(N_JOBS))
    concurrent = time.perf_counter() - tic
    return concurrent, sum(product_loop(m, d, products) for _ in range(N_JOBS))


def run(settings: Settings) -> list[Row]:
    """The joblib / serial ratio of the sweep (target ≤ 0.6), BLAS threads per worker (≤ cores / n_jobs), and
    the machine's ceiling for the ratio (reported)."""
    job = settings.pick(FULL_JOB, SMOKE_JOB)
    serial, joblib, failed = timed_sweeps(job, settings)
    serial_fixed, joblib_fixed, failed_fixed = timed_sweeps(job, settings, iterations=1, tag="_fixed")
    threads = Parallel(n_jobs=N_JOBS, backend="loky")(delayed(worker_blas_threads)() for _ in range(N_JOBS))
    allowed = max(1, (os.cpu_count() or 1) // N_JOBS)
    concurrent, one_by_one = machine_ceiling(job["m"], job["d"], CEILING_PRODUCTS[settings.pick("full", "smoke")])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    log.info("sweep: serial %.1f s, joblib %.1f s (fixed cost %.1f s, %.1f s); BLAS threads in workers %s; "
             "ceiling %.2f", serial, joblib, serial_fixed, joblib_fixed, threads, concurrent / one_by_one)
    return [
        Row(GROUP, f"sweep of {job['jobs']} equal jobs, joblib n_jobs={N_JOBS} vs basic launcher", joblib,
            "s", serial, RATIO,
            note=f"{job['jobs']} jobs of IHT x {job['iterations']} iterations at {job['m']}x{job['d']}; "
                 f"{os.cpu_count()} cores, load average {load:.1f} after the run"
                 + (f"; FAILED: {', '.join(failed)}" if failed else "")),
        Row(GROUP, f"the same sweep beyond its fixed cost, joblib n_jobs={N_JOBS} vs basic launcher",
            joblib - joblib_fixed, "s", serial - serial_fixed, sense="<=",
            note=f"fixed cost = the same sweeps with 1-iteration jobs: basic {serial_fixed:.3g} s, joblib "
                 f"{joblib_fixed:.3g} s (process start, Hydra composing each sweep point in the main process, "
                 f"worker start-up, the report)" + (f"; FAILED: {', '.join(failed_fixed)}" if failed_fixed else "")),
        Row(GROUP, f"BLAS threads per joblib worker (n_jobs={N_JOBS})", float(max(threads)), "",
            threshold=float(allowed), note=f"threadpoolctl in loky workers: {threads}; cores // n_jobs = {allowed}"),
        Row(GROUP, f"machine ceiling: 2 concurrent product loops vs one after the other, {job['m']}x{job['d']}",
            concurrent, "s", one_by_one, note="no obsbench code: what any launcher can reach on this machine now"),
    ]
