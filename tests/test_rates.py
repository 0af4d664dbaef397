"""Empirical rates: known answers on synthetic linear and quadratic sequences, degenerate traces, and the
per-run table and its aggregation across seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.analysis.rates import aggregate_rates, confidence_interval, convergence_order, fit_rates, linear_rate


def quadratic_sequence(e0: float, c: float, n: int) -> np.ndarray:
    errors = [e0]
    for _ in range(n - 1):
        errors.append(c * errors[-1] ** 2)
    return np.array(errors)


@pytest.mark.parametrize("rho", [0.3, 0.9, 0.99])
def test_linear_sequence_gives_its_rate_and_order_one(rho):
    t = np.arange(60)
    errors = 2.5 * rho**t
    assert linear_rate(t, errors).value == pytest.approx(rho, rel=1e-10)
    assert convergence_order(t, errors).value == pytest.approx(1.0, abs=1e-8)


def test_quadratic_sequence_gives_order_two():
    errors = quadratic_sequence(0.5, 1.5, 8)  # 0.5, 0.375, 0.21, ..., stops above the 1e-12 floor
    fit = convergence_order(np.arange(errors.size), errors)
    assert fit.reason == "" and fit.n_points >= 4
    assert fit.value == pytest.approx(2.0, abs=1e-6)


def test_machine_precision_tail_is_ignored():
    errors = np.array([1.0, 0.1, 0.01, 0.001, 1e-16, 1e-16, 2e-16, 1e-16])
    fit = linear_rate(np.arange(errors.size), errors)
    assert fit.value == pytest.approx(0.1) and fit.n_points == 4
    assert convergence_order(np.arange(errors.size), errors).value == pytest.approx(1.0)


def test_one_step_convergence_gives_nan_with_a_reason():
    errors = np.array([3.0, 1e-17, 0.0, 0.0])
    for fit in (linear_rate(np.arange(4), errors), convergence_order(np.arange(4), errors)):
        assert np.isnan(fit.value) and "one-step convergence" in fit.reason and fit.n_points == 1


def test_degenerate_traces():
    flat = np.ones(10)
    assert linear_rate(np.arange(10), flat).value == pytest.approx(1.0)  # stagnation: rate 1
    order = convergence_order(np.arange(10), flat)
    assert np.isnan(order.value) and "stagnation" in order.reason
    assert "zero" in linear_rate([0, 1], [0.0, 0.0]).reason
    assert "only 2 error(s) recorded" in linear_rate([0, 1], [1.0, 0.5]).reason
    assert np.isnan(linear_rate([0, 1, 2], [np.nan, 1.0, 0.5]).value)


def test_non_consecutive_iterations():
    t = np.arange(0, 40, 4)
    errors = 0.8**t
    assert linear_rate(t, errors).value == pytest.approx(0.8)  # per iteration, not per record
    assert "consecutive" in convergence_order(t, errors).reason


def synthetic_trace(seed: int) -> pd.DataFrame:
    """Two solvers × 8 seeds: 'linear' (ρ = 0.7 with 1 % multiplicative noise), 'newton' (quadratic)."""
    rng = np.random.default_rng(seed)
    frames = []
    for run in range(8):
        t = np.arange(30)
        linear = 0.7**t * np.exp(0.01 * rng.standard_normal(t.size))
        newton = np.concatenate([quadratic_sequence(0.3 + 0.1 * rng.uniform(), 2.0, 6), np.full(24, 1e-17)])
        for solver, errors in (("linear", linear), ("newton", newton)):
            frames.append(pd.DataFrame({"run_id": f"{solver}-{run}", "solver": solver, "iteration": t,
                                        "distance": errors}))
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)  # order must not matter


def test_fit_and_aggregate_across_seeds():
    per_run = fit_rates(synthetic_trace(0))
    assert len(per_run) == 16 and set(per_run.columns) >= {"run_id", "solver", "rho_hat", "q_hat", "q_reason"}
    table = aggregate_rates(per_run).set_index("solver")
    assert table.loc["linear", "n_runs"] == 8
    assert table.loc["linear", "rho_hat_ci_low"] <= 0.7 <= table.loc["linear", "rho_hat_ci_high"]
    assert table.loc["linear", "q_hat_mean"] == pytest.approx(1.0, abs=0.05)
    assert table.loc["newton", "q_hat_mean"] == pytest.approx(2.0, abs=1e-6)
    assert table.loc["newton", "q_hat_nan_reason"] == ""
    boot = aggregate_rates(per_run, method="bootstrap", seed=1).set_index("solver")
    assert boot.loc["linear", "rho_hat_ci_low"] <= 0.7 <= boot.loc["linear", "rho_hat_ci_high"]


def test_aggregate_reports_nan_reasons():
    frame = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "solver": "one_step", "iteration": [0, 1, 2] * 2,
                          "distance": [1.0, 0.0, 0.0, 2.0, 0.0, 0.0]})
    table = aggregate_rates(fit_rates(frame))
    assert table.loc[0, "rho_hat_n"] == 0 and np.isnan(table.loc[0, "rho_hat_mean"])
    assert "one-step convergence" in table.loc[0, "rho_hat_nan_reason"]


def test_confidence_interval_edge_cases():
    assert np.isnan(confidence_interval(np.array([np.nan]))[0])
    mean, low, high = confidence_interval(np.array([0.5]))
    assert mean == 0.5 and np.isnan(low) and np.isnan(high)
    assert confidence_interval(np.array([1.0, 1.0, 1.0])) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="method"):
        confidence_interval(np.array([1.0, 2.0]), method="normal")


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="distance"):
        fit_rates(pd.DataFrame({"run_id": [1], "solver": ["x"], "iteration": [0]}))
