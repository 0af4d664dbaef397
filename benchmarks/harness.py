"""What every benchmark group shares: the run settings, timing by repetition, and log-log exponent fits.

Timings use `time.perf_counter`, a warm-up call that is not recorded, and several repeats summarised by the
median (robust on a machine shared with other work) and the minimum (the least disturbed run). Competing
implementations are timed *interleaved*, one call of each per round, so that a load spike hits all of them
alike instead of whichever happened to run during it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Settings:
    """How a benchmark run is sized.

    Parameters
    ----------
    smoke : bool
        Tiny sizes and a single repeat: checks that every group runs end to end (seconds), measures nothing.
    repeats : int
        Repeats per timed call (the median is reported).
    blas_threads : int
        BLAS threads for the in-process timings (both sides of every comparison run under the same limit).
    scratch : Path
        A temporary folder for results roots and Hydra outputs of command-line runs.
    out : Path
        Where the tables (and figures) are written.
    """

    smoke: bool
    repeats: int
    blas_threads: int
    scratch: Path
    out: Path

    def pick(self, full: Any, smoke: Any) -> Any:
        """``smoke`` in smoke mode, ``full`` otherwise (the one switch every group uses for its sizes)."""
        return smoke if self.smoke else full


@dataclass(frozen=True)
class Timing:
    """Seconds of the repeated calls of one piece of work."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def minimum(self) -> float:
        return float(np.min(self.samples))


def time_call(work: Callable[[], Any], repeats: int, warmup: int = 1) -> Timing:
    """Time ``work()`` ``repeats`` times after ``warmup`` unrecorded calls."""
    return time_interleaved({"work": work}, repeats, warmup)["work"]


def time_interleaved(works: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, Timing]:
    """Time several pieces of work in rounds (one call of each per round) after ``warmup`` rounds.

    Interleaving makes the comparison fair on a shared machine: background load changes between rounds, not
    between the competitors.
    """
    for _ in range(warmup):
        for work in works.values():
            work()
    samples: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            tic = time.perf_counter()
            work()
            samples[name].append(time.perf_counter() - tic)
    return {name: Timing(tuple(values)) for name, values in samples.items()}


def wall_time(work: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds taken by one call of ``work()`` and what it returned."""
    tic = time.perf_counter()
    value = work()
    return time.perf_counter() - tic, value


def fit_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """The slope β of the least-squares line log t = α + β log n (NaN with fewer than two usable points)."""
    sizes, times = np.asarray(sizes, dtype=float), np.asarray(times, dtype=float)
    usable = (sizes > 0) & (times > 0) & np.isfinite(times)
    if np.unique(sizes[usable]).size < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes[usable]), np.log(times[usable]), 1)[0])


def relative_error(x: np.ndarray, x_star: np.ndarray) -> float:
    """‖x − x*‖ / ‖x*‖, the success measure of every recovery benchmark."""
    return float(np.linalg.norm(x - x_star) / max(np.linalg.norm(x_star), np.finfo(float).tiny))
