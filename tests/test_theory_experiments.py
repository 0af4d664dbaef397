"""The theory experiments through the real CLI: constants, rates with bounds, conditioning."""

from __future__ import annotations

import pandas as pd

from experiments.store.results import load


def test_constants_prints_labelled_constants_and_why_theorems_do_not_apply(cli):
    done = cli("experiment=constants", "problem=cs_gaussian")
    assert done.returncode == 0, done.stderr
    out = next(cli.outputs.glob("runs/*/*/theorems.csv")).parent
    constants = pd.read_csv(out / "constants.csv").set_index("constant")
    assert constants.loc["mu", "how"] == "exact" and constants.loc["mu", "value"] < 1e-10  # m < d: singular
    assert "sampled" in constants.loc["delta_3k", "how"]
    theorems = pd.read_csv(out / "theorems.csv").set_index("solver")
    assert not theorems["applies"].any()
    assert "A2 strong convexity" in theorems.loc["topk_iobs", "why_not"]
    iht = theorems.loc[["iht"]].set_index("theorem")["why_not"]  # F&R Thm 6.18, RSC/RSS rate, noisy IHT
    assert len(iht) == 3 and iht.str.contains("delta_3k").sum() == 2 and iht.str.contains("delta_2k\\+k\\*").sum() == 1
    assert "theorems" in done.stdout and cli.parquet_files() == []


def test_constants_on_a_well_conditioned_quadratic_find_a_theorem_for_every_solver(cli):
    done = cli("experiment=constants", "problem=theory_quadratic")
    assert done.returncode == 0, done.stderr
    theorems = pd.read_csv(next(cli.outputs.glob("runs/*/*/theorems.csv"))).set_index("solver")
    assert theorems.groupby("solver")["applies"].any().all(), theorems["why_not"]


def test_rates_draws_bounds_and_measures_linear_and_quadratic_orders(cli):
    done = cli("-m", "experiment=rates", "seed=range(3)")
    assert done.returncode == 0, done.stderr
    frame = load(cli.results)
    quadratic = frame[frame["problem"] == "theory_quadratic"]
    certified = quadratic[(quadratic["bound_note"] == "") & quadratic["bound"].notna()]
    assert set(certified["solver"]) == {"iht", "cosamp", "topk_iobs", "iobs_exact"}
    assert (certified["bound"] + 1e-12 >= certified.groupby("run_id")["distance"].shift(0)).all()
    assert "cosamp" not in set(frame.loc[frame["problem"] == "theory_quartic", "solver"])  # not applicable
    sweep = next(cli.outputs.glob("multirun/*/*/rates.csv")).parent
    rates = pd.read_csv(sweep / "rates.csv").set_index(["problem", "solver"])
    assert abs(rates.loc[("theory_quartic", "iht"), "q_hat_mean"] - 1) < 0.1
    assert rates.loc[("theory_quartic", "topk_iobs"), "q_hat_mean"] > 1.5
    assert rates.loc[("theory_quartic", "topk_iobs"), "theory_order"] == 2
    for name in ("rates_theory_quadratic.png", "rates_theory_quartic.png"):
        assert (sweep / name).stat().st_size > 20_000


def test_rates_on_an_ill_conditioned_regression_draws_the_rsc_bound_of_iht(cli):
    """κ = 4: F&R's δ_3k hypothesis fails for IHT, the RSC/RSS rate holds at k = 10 > (κ − 1)²k* = 9."""
    done = cli("-m", "experiment=rates", "problem=theory_regression", "solver=iht", "solver.k=10", "seed=range(2)")
    assert done.returncode == 0, done.stderr
    rows = load(cli.results).query("iteration > 0")
    assert len(rows) > 20 and (rows["bound_note"] == "").all()
    assert (rows["distance"] <= rows["bound"] + 1e-12).all() and (rows["bound"] < rows["distance"] / 0.7).any()
    assert next(cli.outputs.glob("multirun/*/*/rates_theory_regression.png")).stat().st_size > 20_000


def test_conditioning_reports_iterations_against_restricted_condition_number(cli):
    done = cli("-m", "experiment=conditioning", "problem.kappa=1,10,100", "solver=iht,topk_iobs", "seed=0")
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(next(cli.outputs.glob("multirun/*/*/conditioning.csv")))
    iht = table[table["solver"] == "iht"].sort_values("requested")
    assert iht["iterations_to_tol"].is_monotonic_increasing and iht["iterations_to_tol"].iloc[-1] > 20
    assert (table.loc[table["solver"] == "topk_iobs", "iterations_to_tol"] == 1).all()
    assert (abs(table["condition_number"] - table["requested"]) < 1e-6 * table["requested"]).all()
    assert (table["restricted_condition_number"] <= table["condition_number"] + 1e-9).all()
