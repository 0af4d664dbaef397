"""The least-squares refit of CoSaMP, SP and HTP (`solvers._kernels.least_squares_on_support`): the corrected
semi-normal equations against LAPACK's pivoted QR (``gelsy``, the kernel before them), and for wide supports that
leave out fewer than m columns the Woodbury solve from the instance's factored AAᵀ (``row_gram``, as CoSaMP and SP
pass it; the factor itself is timed apart: it is made once per instance). Run by hand; writes
``benchmarks/results/least_squares.md``.

    .venv/bin/python -m benchmarks.least_squares        # ~2 min on one core

For the support sizes a phase diagram at n = 200 refits (m = 33, 100, 167; |S| from k to 3k, tall and wide), and
three at n = 1000, one BLAS thread: the time per refit of both (median of ``--repeats`` timings of 200 calls, 10 at
n = 1000, on one instance), and over 200 (20) random instances per shape the largest relative difference between
the two, against the SVD solution's: both are backward-stable solves, so they agree to cond(A_S)·ε.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from benchmarks.batched import load_average
from solvers._kernels import factor_row_gram, least_squares_on_support

OUT = Path(__file__).resolve().parent / "results" / "least_squares.md"
#: (m, |S|): CoSaMP's merged supports (≤ 3k) and SP/HTP's (k, 2k) across a column of the n = 200 grid
SHAPES = ((33, 10), (33, 30), (33, 60), (100, 30), (100, 63), (100, 95), (100, 150), (100, 189), (167, 60),
          (167, 120), (167, 200))
#: the same at n = 1000 (timed with fewer calls and instances: 10-100 ms per refit)
LARGE_SHAPES = ((500, 300), (500, 700), (900, 800), (767, 810), (900, 950))
D = 200
D_LARGE = 1000


def machine_line() -> str:
    return (f"Machine: {platform.processor() or platform.machine()}, nproc = {os.cpu_count()}, load average "
            f"{load_average()}")


def gelsy(A: np.ndarray, y: np.ndarray, support: np.ndarray) -> np.ndarray:
    """The previous kernel: ``scipy.linalg.lstsq(A_S, y, lapack_driver="gelsy")``."""
    x = np.zeros(A.shape[1])
    x[support] = scipy.linalg.lstsq(A[:, support], y, lapack_driver="gelsy", check_finite=False)[0]
    return x


def instance(rng: np.random.Generator, m: int, size: int, d: int = D) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian A (m x d), a random support of ``size`` columns, y = A x with x on half of it."""
    A = rng.standard_normal((m, d)) / np.sqrt(m)
    support = np.sort(rng.choice(d, size=size, replace=False))
    x = np.zeros(d)
    x[support[: size // 2]] = rng.standard_normal(size // 2)
    return A, A @ x, support


def per_call(solve, A: np.ndarray, y: np.ndarray, support: np.ndarray, repeats: int, calls: int = 200) -> float:
    """Median seconds per call."""
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(calls):
            solve(A, y, support)
        times.append((time.perf_counter() - tic) / calls)
    return statistics.median(times)


def woodbury_applies(m: int, size: int, d: int) -> bool:
    """Whether ``least_squares_on_support`` given the factored AAᵀ solves this shape by the Woodbury identity."""
    return m < size and d - size < m


def with_row_gram(A: np.ndarray) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The kernel called as CoSaMP calls it: with the instance's factored AAᵀ (made here once)."""
    factor = factor_row_gram(A)
    return lambda A, y, support: least_squares_on_support(A, y, support, lambda: factor)


def agreement(m: int, size: int, instances: int = 200, d: int = D) -> tuple[float, float]:
    """max over instances of ‖x_new − x_gelsy‖ / ‖x_svd‖, for the normal equations and (NaN where it does not
    apply) the Woodbury solve."""
    rng = np.random.default_rng(m * 1000 + size)
    worst = [0.0, 0.0 if woodbury_applies(m, size, d) else float("nan")]
    for _ in range(instances):
        A, y, support = instance(rng, m, size, d)
        reference = np.zeros(d)
        reference[support] = scipy.linalg.lstsq(A[:, support], y, lapack_driver="gelsd")[0]
        old, scale = gelsy(A, y, support), np.linalg.norm(reference)
        worst[0] = max(worst[0], float(np.linalg.norm(least_squares_on_support(A, y, support) - old) / scale))
        if woodbury_applies(m, size, d):
            new = with_row_gram(A)(A, y, support)
            worst[1] = max(worst[1], float(np.linalg.norm(new - old) / scale))
    return worst[0], worst[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    before = machine_line()
    lines = ["| d | m | \\|S\\| | gelsy, µs | normal equations, µs | speed-up | Woodbury, µs (factor of AAᵀ, once) | "
             "speed-up over the normal equations | max relative difference to gelsy: normal equations, Woodbury (instances) |",
             "|---|---|---|---|---|---|---|---|---|"]
    with threadpool_limits(limits=1):
        for d, shapes, calls, instances in ((D, SHAPES, 200, 200), (D_LARGE, LARGE_SHAPES, 10, 20)):
            for m, size in shapes:
                A, y, support = instance(np.random.default_rng(0), m, size, d)
                old = per_call(gelsy, A, y, support, args.repeats, calls)
                new = per_call(least_squares_on_support, A, y, support, args.repeats, calls)
                normal, woodbury = agreement(m, size, instances, d)
                if woodbury_applies(m, size, d):
                    fast = per_call(with_row_gram(A), A, y, support, args.repeats, calls)
                    factor = per_call(lambda A, y, support: factor_row_gram(A), A, y, support, args.repeats,
                                      max(1, calls // 10))
                    extra = f"{fast * 1e6:.0f} ({factor * 1e6:.0f}) | {new / fast:.1f}x | {normal:.1e}, {woodbury:.1e}"
                else:
                    extra = f"– | – | {normal:.1e}, –"
                lines.append(f"| {d} | {m} | {size} | {old * 1e6:.0f} | {new * 1e6:.0f} | {old / new:.1f}x | {extra} "
                             f"({instances}) |")
    text = ["<!-- measured by benchmarks/least_squares.py -->", "# Least-squares refits (issue #18)", "",
            f"{before}. Command: `.venv/bin/python -m benchmarks.least_squares`. One BLAS thread; median of "
            f"{args.repeats} timings of 200 calls (10 at d = {D_LARGE}) on one instance per shape; A Gaussian m x d, "
            "y = A x with x on half of the support (|S| > m: the minimum-norm solution). Woodbury: the kernel given "
            "the instance's factored AAᵀ, where it applies (|S| > m, d − |S| < m), "
            "with the time to factor AAᵀ, made once per instance, in brackets.", "", *lines, "",
            f"After: {machine_line()}.", ""]
    OUT.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
