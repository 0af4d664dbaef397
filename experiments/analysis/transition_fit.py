"""The empirical 50% success curve of a phase diagram: a logistic fit of success against ρ at each δ.

At a fixed δ the cells hold n_j trials at sparsity ρ_j with s_j successes. We fit

    P(success | ρ) = σ(a + b·z),   z = (ρ − ρ̄)/s_ρ (standardised for conditioning),   σ(t) = 1/(1 + e^{−t}),

by Firth's penalised maximum likelihood (Firth 1993, "Bias reduction of maximum likelihood estimates",
Biometrika 80(1); Heinze & Schemper 2002 for its use under separation): the log-likelihood plus ½ log det I(β)
stays finite when successes and failures are perfectly separated in ρ, which is the usual case on a coarse
grid. The 50% point is ρ₅₀ = ρ̄ − s_ρ·a/b, with the delta-method standard error

    Var(ρ₅₀) ≈ ∇ρ₅₀ᵀ I(β̂)⁻¹ ∇ρ₅₀,   ∇ρ₅₀ = s_ρ·(−1/b, a/b²),   I(β) = Σ_j n_j p_j(1 − p_j) x_j x_jᵀ.

This is the procedure of Donoho & Tanner 2009 ("Observed universality of phase transitions in
high-dimensional geometry", Phil. Trans. R. Soc. A 367) who fit a logistic regression in ρ at each δ.

Under complete separation — every trial succeeds up to some ρ_j and every trial fails from the next row ρ_{j+1}
on, the usual case once the transition is sharper than the grid (n = 1000 with 15 rows) — the data say only that
ρ₅₀ lies between ρ_j and ρ_{j+1}: the slope has no estimate (the likelihood grows without bound as it steepens),
and the penalised fit's slope and standard error come from the penalty alone (±0.018 where the gap was 0.067,
measured on CoSaMP at n = 1000). The interval reported is then the gap itself: with n trials all succeeding at
ρ_j, P(success) ≤ ½ there has probability ≤ 2⁻ⁿ, likewise at ρ_{j+1}, so under monotone success the gap holds
ρ₅₀ with confidence ≥ 1 − 2·2⁻ⁿ (above 95% from n = 6 trials per cell); ρ₅₀ is its midpoint, the standard error
and slope are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

#: z-value of the two-sided 95% band drawn around ρ₅₀.
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Transition:
    """A fitted 50% point: ``rho50`` and its delta-method standard error ``se`` (NaN when there is none),
    the logistic slope in ρ units, and why a fit was not reported (empty when it was)."""

    rho50: float
    se: float
    slope: float
    note: str = ""
    #: The 95% interval: ρ₅₀ ± 1.96·se, clipped to [0, 1]; under complete separation the gap between the last
    #: row of successes and the first row of failures (see the module docstring).
    low: float = float("nan")
    high: float = float("nan")

    def __post_init__(self) -> None:
        if np.isnan(self.low) and np.isnan(self.high) and np.isfinite(self.se):
            object.__setattr__(self, "low", max(self.rho50 - Z_95 * self.se, 0.0))
            object.__setattr__(self, "high", min(self.rho50 + Z_95 * self.se, 1.0))


def _firth_newton(X: np.ndarray, successes: np.ndarray, trials: np.ndarray, max_iter: int = 100,
                  tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Firth-penalised logistic regression on binomial counts; returns β̂ and I(β̂)⁻¹.

    Iterates β ← β + I⁻¹U*, with the modified score U* = Σ_j (s_j − n_j p_j + h_j(½ − p_j)) x_j and hat
    values h_j = n_j p_j(1 − p_j) x_jᵀ I⁻¹ x_j (Firth 1993; Heinze & Schemper 2002); steps are
    capped at length 5 for robustness.
    """
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        p = expit(X @ beta)
        w = trials * p * (1.0 - p)
        cov = np.linalg.inv(X.T @ (w[:, None] * X))
        hat = w * np.einsum("ij,jk,ik->i", X, cov, X)
        score = X.T @ (successes - trials * p + hat * (0.5 - p))
        step = cov @ score
        length = np.linalg.norm(step)
        if length > 5.0:
            step *= 5.0 / length
        beta = beta + step
        if length < tol:
            break
    p = expit(X @ beta)
    w = trials * p * (1.0 - p)
    return beta, np.linalg.inv(X.T @ (w[:, None] * X))


def fit_transition(rho: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> Transition:
    """Fit P(success | ρ) = σ(a + bρ) and return the 50% point ρ₅₀ = −a/b with its standard error.

    Parameters
    ----------
    rho : array of shape (J,)
        Sparsity ratios ρ_j = k_j/m of the cells at one δ.
    successes, trials : arrays of shape (J,)
        Successful and total trials per cell.

    Returns
    -------
    Transition
        NaN ``rho50`` (with a ``note``) when the column is all success or all failure, has fewer than two
        distinct ρ, success increases with ρ, or the 50% point falls outside the sampled range of ρ. Under
        complete separation the midpoint of the gap, whose ends are the interval (NaN ``se`` and ``slope``).
    """
    rho, successes, trials = (np.asarray(a, dtype=float) for a in (rho, successes, trials))
    keep = trials > 0
    rho, successes, trials = rho[keep], successes[keep], trials[keep]
    if np.unique(rho).size < 2:
        return Transition(np.nan, np.nan, np.nan, "fewer than two values of rho")
    if successes.sum() == 0 or successes.sum() == trials.sum():
        return Transition(np.nan, np.nan, np.nan, "no transition: every trial " +
                          ("failed" if successes.sum() == 0 else "succeeded"))
    last_success, first_failure = rho[successes > 0].max(), rho[successes < trials].min()
    if last_success < first_failure:  # complete separation: the gap is all the data say (module docstring)
        return Transition((last_success + first_failure) / 2, np.nan, np.nan,
                          f"separated: every trial succeeds up to rho = {last_success:.3g} and fails from "
                          f"rho = {first_failure:.3g}; rho50 lies between", last_success, first_failure)
    centre, scale = float(np.mean(rho)), float(np.std(rho))
    X = np.column_stack([np.ones_like(rho), (rho - centre) / scale])
    (a, b), cov = _firth_newton(X, successes, trials)
    if not b < 0:
        return Transition(np.nan, np.nan, b / scale, "success does not decrease with rho")
    rho50 = centre - scale * a / b
    if not rho.min() <= rho50 <= rho.max():
        return Transition(np.nan, np.nan, b / scale, "50% point outside the sampled range of rho")
    gradient = scale * np.array([-1.0 / b, a / b**2])
    return Transition(float(rho50), float(np.sqrt(gradient @ cov @ gradient)), float(b / scale))


def transition_curves(cells: pd.DataFrame, by: str = "group") -> pd.DataFrame:
    """The fitted 50% curve of every group: one row per (group, δ).

    Parameters
    ----------
    cells : DataFrame
        One row per grid cell with columns ``by``, ``solver``, ``delta``, ``rho_actual``, ``successes``,
        ``trials`` (as made by `experiments.kinds.phase_transition.success_table`).

    Returns
    -------
    DataFrame
        Columns ``by``, ``solver``, ``delta`` (nominal), ``delta_actual`` (m/d, when ``cells`` has it),
        ``rho50``, ``se``, ``low``, ``high`` (the 95% interval of `Transition`), ``slope`` and ``note``.
    """
    rows = []
    for (group, solver, delta), column in cells.groupby([by, "solver", "delta"], sort=True):
        fit = fit_transition(column["rho_actual"], column["successes"], column["trials"])
        actual = float(column["delta_actual"].mean()) if "delta_actual" in column else delta
        rows.append({by: group, "solver": solver, "delta": delta, "delta_actual": actual, "rho50": fit.rho50,
                     "se": fit.se, "low": fit.low, "high": fit.high, "slope": fit.slope, "note": fit.note})
    columns = [by, "solver", "delta", "delta_actual", "rho50", "se", "low", "high", "slope", "note"]
    return pd.DataFrame(rows, columns=columns)
