"""Empirical convergence rates of error traces: the local linear rate ρ̂ and the convergence order q̂ per run,
and their aggregation across seeds with a confidence interval.

For a trace e_t = ‖x_t − x*‖:

- ρ̂ = exp(slope of log e_t against t): e_t ≈ C·ρ^t (linear convergence, e.g. IHT under the RIP);
- q̂ = slope of log e_{t+1} against log e_t: e_{t+1} ≈ c·e_t^q (q = 1 linear, q = 2 quadratic, e.g. I-OBS).

Only the leading run of errors above a floor max(rel_floor·e_0, abs_floor) is used, so machine-precision
stagnation after convergence does not bend the fit; degenerate traces give NaN and a reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.special

log = logging.getLogger(__name__)

#: Errors at or below REL_FLOOR·e_0 are treated as converged (machine precision) and ignored.
REL_FLOOR = 1e-12
#: Fewest errors above the floor a fit needs (two points always fit a line exactly).
MIN_POINTS = 3


@dataclass(frozen=True)
class RateFit:
    """A fitted rate (``value``), how many errors it used, and why it is NaN (``reason``; "" when fitted)."""

    value: float
    n_points: int
    reason: str = ""


def errors_above_floor(iterations: np.ndarray, errors: np.ndarray, rel_floor: float = REL_FLOOR,
                       abs_floor: float = 0.0) -> tuple[np.ndarray, np.ndarray, str]:
    """The leading run (iterations, errors) with every error finite and above max(rel_floor·e_0, abs_floor),
    and a reason when that run is empty."""
    errors = np.asarray(errors, dtype=float)
    iterations = np.asarray(iterations, dtype=float)
    if errors.size == 0 or not np.isfinite(errors[0]) or errors[0] <= 0:
        return iterations[:0], errors[:0], "initial error is zero, missing or not finite"
    floor = max(rel_floor * errors[0], abs_floor)
    keep = np.isfinite(errors) & (errors > floor)
    stop = int(np.argmin(keep)) if not keep.all() else errors.size
    return iterations[:stop], errors[:stop], ""


def too_short(n_points: int, n_total: int, min_points: int) -> str:
    """The reason a run with ``n_points`` usable errors out of ``n_total`` cannot be fitted."""
    if n_points < n_total:
        return (f"only {n_points} error(s) above the floor before convergence (e.g. one-step convergence); "
                f"a fit needs {min_points}")
    return f"only {n_points} error(s) recorded; a fit needs {min_points}"


def linear_rate(iterations: Sequence[float], errors: Sequence[float], *, rel_floor: float = REL_FLOOR,
                abs_floor: float = 0.0, min_points: int = MIN_POINTS) -> RateFit:
    """ρ̂ = exp(b) with b the least-squares slope of log e_t against t over the errors above the floor.

    Iterations need not be consecutive (ρ̂ is per iteration). ρ̂ ≈ 1 means stagnation, ρ̂ > 1 divergence.
    """
    t, e, reason = errors_above_floor(np.asarray(iterations), np.asarray(errors), rel_floor, abs_floor)
    if reason:
        return RateFit(np.nan, 0, reason)
    if e.size < min_points:
        return RateFit(np.nan, int(e.size), too_short(e.size, len(errors), min_points))
    slope = np.polyfit(t, np.log(e), 1)[0]
    return RateFit(float(np.exp(slope)), int(e.size))


def convergence_order(iterations: Sequence[float], errors: Sequence[float], *, rel_floor: float = REL_FLOOR,
                      abs_floor: float = 0.0, min_points: int = MIN_POINTS) -> RateFit:
    """q̂ = least-squares slope of log e_{t+1} against log e_t over consecutive iterations above the floor.

    Needs ``min_points`` errors (``min_points`` − 1 pairs) whose logarithms vary; a stagnating trace
    (constant error above the floor) has no order and gives NaN.
    """
    t, e, reason = errors_above_floor(np.asarray(iterations), np.asarray(errors), rel_floor, abs_floor)
    if reason:
        return RateFit(np.nan, 0, reason)
    if e.size < min_points:
        return RateFit(np.nan, int(e.size), too_short(e.size, len(errors), min_points))
    consecutive = np.diff(t) == 1
    x, y = np.log(e[:-1])[consecutive], np.log(e[1:])[consecutive]
    if x.size < min_points - 1:
        return RateFit(np.nan, int(x.size + 1), f"fewer than {min_points - 1} consecutive-iteration pairs")
    if np.ptp(x) <= 1e-9 * max(1.0, float(np.max(np.abs(x)))):
        return RateFit(np.nan, int(x.size + 1), "stagnation: the error does not change, no order")
    return RateFit(float(np.polyfit(x, y, 1)[0]), int(x.size + 1))


def fit_rates(trace: pd.DataFrame, *, by: Sequence[str] = ("solver",), rel_floor: float = REL_FLOOR,
              abs_floor: float = 0.0, min_points: int = MIN_POINTS) -> pd.DataFrame:
    """One row per ``run_id``: the ``by`` columns, ``rho_hat``/``rho_points``/``rho_reason`` and
    ``q_hat``/``q_points``/``q_reason``, from a trace with columns run_id, iteration, distance and ``by``."""
    missing = {"run_id", "iteration", "distance", *by} - set(trace.columns)
    if missing:
        raise ValueError(f"trace lacks column(s) {', '.join(sorted(missing))}")
    options = dict(rel_floor=rel_floor, abs_floor=abs_floor, min_points=min_points)
    rows = []
    for run_id, run in trace.groupby("run_id", sort=True):
        run = run.sort_values("iteration")
        t, e = run["iteration"].to_numpy(float), run["distance"].to_numpy(float)
        rho, q = linear_rate(t, e, **options), convergence_order(t, e, **options)
        rows.append({"run_id": run_id, **{c: run[c].iloc[0] for c in by},
                     "rho_hat": rho.value, "rho_points": rho.n_points, "rho_reason": rho.reason,
                     "q_hat": q.value, "q_points": q.n_points, "q_reason": q.reason})
    return pd.DataFrame(rows, columns=["run_id", *by, "rho_hat", "rho_points", "rho_reason",
                                       "q_hat", "q_points", "q_reason"])


def confidence_interval(values: np.ndarray, confidence: float = 0.95, method: str = "t", n_boot: int = 2000,
                        seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of the finite ``values``: Student-t interval mean ± t_{(1+c)/2, n−1}·s/√n, or the
    percentile bootstrap of the mean (``method="bootstrap"``, seeded). NaN bounds for fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if values.size < 2:
        return mean, np.nan, np.nan
    if method == "t":
        # the t quantile by scipy.special (what scipy.stats.t.ppf calls): scipy.stats costs ~0.6 s to import
        quantile = scipy.special.stdtrit(values.size - 1, 0.5 + confidence / 2)
        half = quantile * values.std(ddof=1) / np.sqrt(values.size)
        return mean, mean - half, mean + half
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = rng.choice(values, size=(n_boot, values.size), replace=True).mean(axis=1)
        low, high = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
        return mean, float(low), float(high)
    raise ValueError(f"method={method!r} must be 't' or 'bootstrap'")


def aggregate_rates(per_run: pd.DataFrame, *, by: Sequence[str] = ("solver",),
                    columns: Sequence[str] = ("rho_hat", "q_hat"), confidence: float = 0.95, method: str = "t",
                    n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per group of ``by``: ``n_runs`` and, for each fitted column c, ``c_n`` (finite fits), ``c_mean``,
    ``c_ci_low``, ``c_ci_high`` and ``c_nan_reason`` (the most common reason of the NaN fits, "" if none)."""
    rows = []
    for key, group in per_run.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = {**dict(zip(by, key)), "n_runs": len(group)}
        for column in columns:
            values = group[column].to_numpy(float)
            mean, low, high = confidence_interval(values, confidence, method, n_boot, seed)
            reason_column = column.replace("_hat", "_reason")
            reasons = group.loc[~np.isfinite(values), reason_column] if reason_column in group else pd.Series([])
            row |= {f"{column}_n": int(np.isfinite(values).sum()), f"{column}_mean": mean,
                    f"{column}_ci_low": low, f"{column}_ci_high": high,
                    f"{column}_nan_reason": reasons.mode().iloc[0] if len(reasons) else ""}
        rows.append(row)
    return pd.DataFrame(rows)
