"""Phase diagrams: the ℓ1 weak threshold, the logistic 50% fit, per-cell seeds, known answers for basis
pursuit, and the experiment end to end (figures, tables, resume, independence of the worker count)."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from scipy.special import expit

from experiments.analysis.donoho_tanner import (l1_statistical_dimension, weak_threshold, weak_threshold_curve,
                                       weak_threshold_state_evolution)
from experiments.kinds.phase_grid import Rule, grid_points, plan_cells, solve_cell, trial_seed
from experiments.kinds.phase_transition import run
from experiments.store.results import load
from experiments.analysis.transition_fit import fit_transition, transition_curves

TINY = ("experiment=phase_transition", "problem.d=30", "experiment.deltas=[0.5,0.9]", "experiment.rhos=3",
        "experiment.trials=3", "experiment.n_jobs=1", "experiment.progress=false")


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels from the PNG header."""
    return struct.unpack(">II", path.read_bytes()[16:24])


def config(tmp_path, *overrides: str):
    with initialize_config_module(config_module="conf", version_base=None):
        return compose("config", overrides=[f"paths.results={tmp_path / 'results'}", *overrides])


# --- theory ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("delta", [0.05, 0.1, 0.25, 0.5, 0.75, 0.9])
def test_weak_threshold_two_independent_formulas_agree(delta):
    """Statistical dimension (Amelunxen, Lotz, McCoy & Tropp 2014) vs the closed form of Donoho, Maleki &
    Montanari 2009 (PNAS 106(45)), which they show equals the Donoho–Tanner cross-polytope weak threshold."""
    rho = weak_threshold(delta)
    assert rho == pytest.approx(weak_threshold_state_evolution(delta), abs=1e-9)
    assert l1_statistical_dimension(rho * delta) == pytest.approx(delta, abs=1e-10)  # δ = ψ(ρδ)


def test_weak_threshold_matches_published_values():
    """Values of the cross-polytope weak threshold commonly quoted for Donoho & Tanner 2009 (JAMS 22(1),
    "Counting faces of randomly projected polytopes when the projection radically lowers dimension"):
    ρ_W(0.5) ≈ 0.3848, ρ_W(0.1) ≈ 0.1883 (not re-read from the paper here). Both formulas above give 0.38569
    and 0.18943 and agree with each other to 1e-15, so the quoted values sit about 1e-3 low (read off a
    figure); the check allows 2e-3 and pins this module's value to 1e-6 against regressions."""
    assert weak_threshold(0.5) == pytest.approx(0.3848, abs=2e-3)
    assert weak_threshold(0.1) == pytest.approx(0.1883, abs=2e-3)
    assert weak_threshold(0.5) == pytest.approx(0.385690, abs=1e-6)  # this module, pinned against regressions


def test_weak_threshold_small_delta_asymptotics_and_shape():
    """Donoho & Tanner 2009 (JAMS), the regime δ → 0: ρ_W(δ) ~ 1/(2 log(1/δ)); the curve increases to 1."""
    ratios = [weak_threshold(delta) * 2 * np.log(1 / delta) for delta in (1e-10, 1e-40, 1e-100)]
    assert ratios[0] > ratios[1] > ratios[2] > 1.0 and ratios[2] < 1.01
    curve = weak_threshold_curve()
    assert np.all(np.diff(curve["rho"]) > 0) and curve["rho"].iloc[-1] == 1.0 and curve["rho"].iloc[0] < 0.15
    with pytest.raises(ValueError):
        weak_threshold(0.0)


# --- logistic fit -----------------------------------------------------------------------------------------------

def test_logistic_fit_recovers_a_known_transition():
    """Bernoulli trials with P(success | ρ) = σ(−(ρ − 0.3)/0.03): ρ₅₀ within 3 standard errors of 0.3."""
    rho = np.linspace(0.05, 0.6, 12)
    trials = np.full(rho.size, 300)
    for seed in range(4):
        successes = np.random.default_rng(seed).binomial(trials, expit(-(rho - 0.3) / 0.03))
        fit = fit_transition(rho, successes, trials)
        assert abs(fit.rho50 - 0.3) < 3 * fit.se and fit.se < 0.005
        assert fit.slope == pytest.approx(-1 / 0.03, rel=0.25)


def test_logistic_fit_under_separation_and_without_transition():
    """Complete separation (all succeed up to one row, all fail from the next): the interval is the gap between
    the two rows, not the penalised fit's ±1.96·se, which the penalty alone sets (±0.018 in a gap of 0.067 on
    CoSaMP at n = 1000)."""
    rho, trials = np.linspace(0.05, 0.6, 12), np.full(12, 20)
    separated = fit_transition(rho, np.r_[np.full(5, 20), np.zeros(7)], trials)
    assert (separated.low, separated.high) == (rho[4], rho[5]) and separated.rho50 == (rho[4] + rho[5]) / 2
    assert np.isnan(separated.se) and np.isnan(separated.slope) and separated.note.startswith("separated")
    # one partial row at the boundary: no separation, the logistic fit and its delta-method interval
    partial = fit_transition(rho, np.r_[np.full(5, 20), 9, np.zeros(6)], trials)
    assert np.isfinite(partial.se) and rho[4] < partial.rho50 < rho[6] and partial.note == ""
    assert partial.low == pytest.approx(partial.rho50 - 1.959963984540054 * partial.se)
    assert np.isnan(fit_transition(rho, trials, trials).rho50)  # every trial succeeded
    assert np.isnan(fit_transition(rho, np.zeros(12), trials).rho50)


def test_transition_table_reports_the_gap_of_a_separated_column():
    cells = pd.DataFrame({"group": "g", "solver": "s", "delta": np.repeat([0.5, 0.9], 4),
                          "delta_actual": np.repeat([0.5, 0.9], 4), "rho_actual": np.tile([0.1, 0.2, 0.3, 0.4], 2),
                          "successes": [20, 20, 0, 0, 20, 19, 6, 0], "trials": 20})
    table = transition_curves(cells).set_index("delta")
    assert (table.loc[0.5, "low"], table.loc[0.5, "high"], table.loc[0.5, "rho50"]) == (0.2, 0.3, 0.25)
    assert np.isnan(table.loc[0.5, "se"]) and table.loc[0.5, "note"].startswith("separated")
    assert np.isfinite(table.loc[0.9, "se"]) and table.loc[0.9, "low"] < table.loc[0.9, "rho50"] < table.loc[0.9, "high"]


# --- grid and known answers ------------------------------------------------------------------------------------

def test_grid_points_and_seeds_are_deterministic():
    assert np.allclose(grid_points(4, "deltas"), [0.125, 0.375, 0.625, 0.875])
    assert np.allclose(grid_points([0.9, 0.3], "rhos"), [0.3, 0.9])
    for bad in (0, [0.0, 0.5], [1.2]):
        with pytest.raises(ValueError):
            grid_points(bad, "rhos")
    seeds = {trial_seed(0, 50, m, k, t) for m in (10, 20) for k in (1, 2) for t in range(3)}
    assert len(seeds) == 12 and trial_seed(0, 50, 10, 1, 0) == trial_seed(0, 50, 10, 1, 0)


def test_basis_pursuit_succeeds_below_the_curve_and_fails_above(tmp_path):
    """d = 60: cells well below ρ_W(δ) succeed in ≥ 90% of trials, cells well above in ≤ 10%."""
    cfg = config(tmp_path, "experiment=phase_transition", "problem.d=60", "experiment.deltas=[0.5,0.8]",
                 "experiment.rhos=[0.1,0.95]", "experiment.trials=10")
    rule = Rule("rel_error", 1e-4)
    for cell in plan_cells(cfg):
        rate = solve_cell(cell, "phase_transition", rule)["success"].mean()
        gap = cell.rho - weak_threshold(cell.delta)
        assert (rate >= 0.9) if gap < -0.2 else (rate <= 0.1), (cell.delta, cell.rho, rate)


# --- end to end ----------------------------------------------------------------------------------------------

def test_phase_diagram_end_to_end_figures_tables_and_resume(cli):
    done = cli(*TINY)
    assert done.returncode == 0, done.stderr
    files = cli.parquet_files()
    assert len(files) == 6  # one parquet per cell: 2 deltas x 3 rhos
    frame = load(cli.results)
    assert len(frame) == 18 and {"p_delta", "p_rho", "p_m", "p_k_star", "p_d", "trial", "seed", "rel_error",
                                 "support_exact", "success", "status", "time_s"} <= set(frame.columns)
    sweep = next(cli.outputs.glob("multirun/*/*"))
    for stem, size in (("phase_diagram", (945, 794)), ("phase_comparison", (1005, 735))):
        png = sweep / f"{stem}.png"
        assert png.stat().st_size > 10_000 and png.with_suffix(".pdf").is_file()
        assert np.allclose(png_size(png), size, rtol=0.15), png_size(png)
    table = pd.read_csv(sweep / "phase_transition.csv")
    assert list(table["delta"]) == [0.5, 0.9] and {"rho50", "se", "low", "high"} <= set(table.columns)
    assert len(pd.read_csv(sweep / "phase_cells.csv")) == 6
    stamps = {p: p.stat().st_mtime_ns for p in files}
    again = cli(*TINY)
    assert again.returncode == 0 and "6 cells already stored" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in cli.parquet_files()} == stamps


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    overrides = ("experiment=phase_transition", "problem.d=24", "experiment.deltas=2", "experiment.rhos=3",
                 "experiment.trials=2", "solver=cosamp", "experiment.progress=false")
    one = run(config(tmp_path / "one", *overrides, "experiment.n_jobs=1"))
    two = run(config(tmp_path / "two", *overrides, "experiment.n_jobs=2"))
    columns = ["run_id", "trial", "seed", "p_m", "p_k_star", "rel_error", "support_size", "iteration", "success"]
    sort = ["run_id", "trial"]
    pd.testing.assert_frame_equal(one[columns].sort_values(sort).reset_index(drop=True),
                                  two[columns].sort_values(sort).reset_index(drop=True))


def test_a_fresh_a_resumed_and_a_partly_resumed_grid_return_the_same_rows(tmp_path):
    """The job returns the cells it computes from memory and the others from the store: the same rows (values
    and dtypes of the columns a report reads), in grid order, however many cells were stored before."""
    cfg = config(tmp_path, *TINY)
    fresh = run(cfg)
    resumed = run(cfg)  # every cell read back from the store
    first = plan_cells(cfg)[0].run_id
    for path in (tmp_path / "results").glob("*.parquet"):
        if path.stem != first:
            path.unlink()
    partly = run(cfg)  # one cell stored, five computed again
    columns = ["run_id", "trial", "seed", "p_delta", "p_rho", "rel_error", "support_exact", "success", "status",
               "iteration"]
    assert list(dict.fromkeys(fresh["run_id"])) == [cell.run_id for cell in plan_cells(cfg)]
    for other in (resumed, partly):
        pd.testing.assert_frame_equal(fresh[columns], other[columns])


def test_invalid_grid_is_a_one_line_error_and_writes_nothing(cli):
    done = cli("experiment=phase_transition", "experiment.rhos=[0.0,1.5]")
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0
    assert "experiment.rhos" in done.stderr and cli.parquet_files() == []
