"""Algorithm-selection maps: for every phase-diagram cell, the fastest configuration among those that succeed.

Blanchard & Tanner ("Performance comparisons of greedy algorithms in compressed sensing", Numer. Linear Algebra
Appl. 22, 2015) summarise a set of phase diagrams by one map: at each (δ, ρ), the algorithm that recovers with
probability at least ½ in the least time. The grids here keep the final row of every trial, so the time of a
trial is its whole solve (``time_s``, the solver clock) — the time to the solver's own stopping rule, which
for a successful trial is the time to reach (and pass) the success tolerance. The median is over the cell's
*successful* trials: a solver is not made to look fast by trials that stopped early without recovering.

Timings carry noise: each selected cell also records the runner-up and the ratio of the two medians, so a
reader (and the figure, which hatches close calls) can tell a clear winner from a coin toss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: A configuration competes in a cell when its success rate is at least this (Blanchard & Tanner's ½).
MIN_SUCCESS = 0.5
#: A winner is a "close call" when the runner-up's median time is within this factor of its own.
CLOSE_CALL = 1.2


def cell_times(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, solver, cell): trials, success rate, median solve time of the successful trials.

    Parameters
    ----------
    frame : DataFrame
        Final rows of the trials with ``group``, ``solver``, ``p_delta``, ``p_rho``, ``success`` and ``time_s``.
    """
    success = frame["success"].astype(bool)
    keys = ["group", "solver", "p_delta", "p_rho"]
    table = frame.assign(success=success, success_time=frame["time_s"].where(success)).groupby(
        keys, sort=True).agg(trials=("success", "size"), success_rate=("success", "mean"),
                             median_success_time_s=("success_time", "median"))
    return table.reset_index().rename(columns={"p_delta": "delta", "p_rho": "rho"})


def selection_table(frame: pd.DataFrame, min_success: float = MIN_SUCCESS) -> pd.DataFrame:
    """The winner of every cell: the configuration with success rate ≥ ``min_success`` and the least median
    solve time over its successful trials.

    Returns
    -------
    DataFrame
        One row per nominal cell (``delta``, ``rho``): ``winner`` (configuration label) and ``solver``, its
        ``success_rate`` and ``median_success_time_s``, ``runner_up`` and its time, ``time_ratio``
        (runner-up / winner, ≥ 1; NaN with a single candidate), ``candidates`` (how many qualified) and
        ``close_call`` (``time_ratio`` < `CLOSE_CALL`). Cells where nothing qualifies have ``winner`` = NaN.
    """
    times = cell_times(frame)
    records = []
    for (delta, rho), rows in times.groupby(["delta", "rho"], sort=True):
        qualified = rows[rows["success_rate"].ge(min_success)].sort_values(["median_success_time_s", "group"])
        record = dict(delta=delta, rho=rho, candidates=len(qualified), winner=np.nan, solver=np.nan,
                      success_rate=np.nan, median_success_time_s=np.nan, runner_up=np.nan,
                      runner_up_time_s=np.nan, time_ratio=np.nan)
        if len(qualified):
            best = qualified.iloc[0]
            record.update(winner=best["group"], solver=best["solver"], success_rate=best["success_rate"],
                          median_success_time_s=best["median_success_time_s"])
        if len(qualified) > 1:
            second = qualified.iloc[1]
            record.update(runner_up=second["group"], runner_up_time_s=second["median_success_time_s"],
                          time_ratio=second["median_success_time_s"] / best["median_success_time_s"])
        records.append(record)
    table = pd.DataFrame.from_records(records)
    return table.assign(close_call=table["time_ratio"].lt(CLOSE_CALL))
