"""experiment=robustness end to end on a tiny grid, and its pieces (F1, winners with ties)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.store.results import load
from experiments.kinds.robustness import support_f1, winners


def test_support_f1_counts_hits_against_both_sizes():
    assert support_f1(np.array([1.0, 0, 2.0, 0]), np.array([0, 2])) == 1.0
    assert support_f1(np.array([1.0, 1.0, 0, 0]), np.array([0, 2])) == 0.5
    assert support_f1(np.zeros(4), np.array([1])) == 0.0


def test_winners_show_ties_and_skip_non_competing_solvers():
    table = pd.DataFrame(dict(snr_db=[10.0] * 3, rho=[0.5] * 3, solver=["a", "b", "c"],
                              objective_gap_median=[0.0, 5e-4, 0.2]))
    best = winners(table, tie_tol=1e-3, budgeted=["a", "b", "c"])
    assert best["winners"].tolist() == ["a = b"] and best["n_winners"].tolist() == [2]
    assert winners(table, tie_tol=1e-3, budgeted=["c"])["winners"].tolist() == ["c"]


def test_robustness_runs_resumes_and_draws_the_maps(cli):
    args = ("experiment=robustness", "experiment.trials=2", "experiment.snr_db=[20,5]", "experiment.rhos=[0,0.9]",
            "experiment.n_jobs=1", "experiment.progress=false")
    done = cli(*args, timeout=400)
    assert done.returncode == 0, done.stderr
    frame = load(cli.results)
    assert frame["run_id"].nunique() == 4 and len(frame) == 4 * 2 * 11  # cells x trials x solvers
    assert set(frame["oracle"]) == {"exact"}
    budgeted = frame[frame["solver"] != "lasso"]
    assert (budgeted["objective_gap"] >= -1e-9).all()  # nothing k-sparse beats the certified best subset
    exact = frame[frame["solver"] == "iobs_exact"]
    assert (exact["objective_gap"].abs() <= 1e-9).all()  # Lemma 2: exact I-OBS is the best subset on a quadratic
    out = next(cli.outputs.glob("runs/*/*/robustness_winners.png")).parent
    for name in ("objective_gap", "support_f1", "rel_error", "winners"):
        assert (out / f"robustness_{name}.png").stat().st_size > 10_000
    cells = pd.read_csv(out / "robustness_cells.csv")
    assert {"objective_gap_median", "support_f1_median", "best_subset_rate"} <= set(cells.columns)
    stamps = {p: p.stat().st_mtime_ns for p in cli.parquet_files()}
    again = cli(*args, timeout=400)
    assert again.returncode == 0 and {p: p.stat().st_mtime_ns for p in cli.parquet_files()} == stamps


def test_topk_iobs_on_a_quadratic_lands_on_the_thresholded_least_squares_fit_from_any_start():
    """θ − H⁻¹∇f(θ) = θ_OLS for every θ on f = ½‖Aθ − y‖²: Topk-I-OBS (γ = 1) ends at T_k(θ_OLS), so noise and
    correlation decide its quality (the README's "when does I-OBS lose")."""
    import dataclasses

    from problems import make_compressed_sensing
    from solvers.base import make_solver
    from solvers._kernels import hard_threshold

    for seed in range(20):
        problem = make_compressed_sensing(m=50, d=24, k_star=4, matrix="toeplitz", rho=0.8, snr_db=10.0, seed=seed)
        ols = np.linalg.lstsq(problem.A, problem.y, rcond=None)[0]
        start = np.random.default_rng(seed).standard_normal(problem.d)
        for instance in (problem, dataclasses.replace(problem, x0=start)):
            result = make_solver("topk_iobs").run(instance)
            np.testing.assert_allclose(result.x, hard_threshold(ols, 4), atol=1e-9 * np.abs(ols).max())
            assert result.n_iter <= 2  # one step, then the repeat is the convergence test
