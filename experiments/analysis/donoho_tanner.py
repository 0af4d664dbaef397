"""The ℓ1 phase transition of Donoho & Tanner, computed (never tabulated): the weak threshold ρ_W(δ).

Coordinates follow Donoho & Tanner: δ = m/d (undersampling: measurements over dimension) and ρ = k/m
(sparsity: nonzeros over measurements). For a Gaussian m×d matrix and a k-sparse signal, basis pursuit
(ℓ1 minimisation) recovers the signal with probability → 1 when ρ < ρ_W(δ) and → 0 when ρ > ρ_W(δ), as
d → ∞ with δ, ρ fixed.

Two independent routes to the same curve are implemented:

- `weak_threshold` — the statistical dimension of the ℓ1 descent cone (Amelunxen, Lotz, McCoy & Tropp 2014,
  "Living on the edge: phase transitions in convex programs with random data", Inf. Inference 3(3)): the
  transition sits at m = d·ψ(k/d), i.e. δ = ψ(ρδ), with

      ψ(ε) = inf_{τ≥0} [ ε(1 + τ²) + (1 − ε)·2∫_τ^∞ (u − τ)² φ(u) du ],

  and 2∫_τ^∞ (u − τ)² φ(u) du = 2[(1 + τ²)Q(τ) − τφ(τ)], Q the standard normal upper tail. The infimum is
  attained where ετ = 2(1 − ε)(φ(τ) − τQ(τ)), which gives the curve parametrically in τ.
- `weak_threshold_state_evolution` — the closed form of Donoho, Maleki & Montanari 2009 ("Message-passing
  algorithms for compressed sensing", PNAS 106(45), eq. for ρ_SE):

      ρ(δ) = max_{z≥0} [1 − (2/δ)((1 + z²)Φ(−z) − zφ(z))] / [1 + z² − 2((1 + z²)Φ(−z) − zφ(z))],

  shown there to coincide with the cross-polytope weak threshold of Donoho & Tanner 2009 ("Counting faces of
  randomly projected polytopes when the projection radically lowers dimension", JAMS 22(1)).

The two agree to machine precision (tested). As δ → 0, ρ_W(δ) ~ 1/(2 log(1/δ)) (Donoho & Tanner 2009, JAMS).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.optimize
from scipy.special import ndtr

def _pdf(t: float) -> float:
    """φ(t), the standard normal density."""
    return float(np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi))


def _upper_tail(t: float) -> float:
    """Q(t) = 1 − Φ(t), computed as Φ(−t) without cancellation."""
    return float(ndtr(-t))


#: Largest τ used when inverting δ(τ): δ(37) ≈ 1e-299, below DELTA_MIN, and φ(37) does not underflow.
_TAU_MAX = 37.0
#: Below this δ the curve is not computed (φ(τ) would underflow near the root).
DELTA_MIN = 1e-200


def _gaussian_tail_moment(tau: float) -> float:
    """(1 + τ²)Q(τ) − τφ(τ) = ∫_τ^∞ (u − τ)² φ(u) du."""
    return (1.0 + tau * tau) * _upper_tail(tau) - tau * _pdf(tau)


def _optimal_epsilon(tau: float) -> float:
    """The sparsity ε = ρδ whose infimum in ψ(ε) is attained at τ: ε = 2h/(τ + 2h), h = φ(τ) − τQ(τ)."""
    h = _pdf(tau) - tau * _upper_tail(tau)
    return 2.0 * h / (tau + 2.0 * h)


def _delta_at(tau: float) -> float:
    """δ = ψ(ε(τ)) along the parametric curve; decreases from 1 (τ = 0) to 0 (τ → ∞)."""
    eps = _optimal_epsilon(tau)
    return eps * (1.0 + tau * tau) + (1.0 - eps) * 2.0 * _gaussian_tail_moment(tau)


def l1_statistical_dimension(eps: float) -> float:
    """ψ(ε): the normalised statistical dimension of the ℓ1 descent cone at an ε·d-sparse point.

    ψ(ε) = inf_{τ≥0} ε(1 + τ²) + (1 − ε)·2[(1 + τ²)Q(τ) − τφ(τ)]  (Amelunxen et al. 2014).
    The objective is convex in τ; its minimiser solves ετ = 2(1 − ε)(φ(τ) − τQ(τ)).
    """
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps={eps} must lie in [0, 1]")
    if eps in (0.0, 1.0):
        return eps

    def stationarity(tau: float) -> float:
        return eps * tau - 2.0 * (1.0 - eps) * (_pdf(tau) - tau * _upper_tail(tau))

    tau = scipy.optimize.brentq(stationarity, 0.0, _TAU_MAX, xtol=1e-14)
    return eps * (1.0 + tau * tau) + (1.0 - eps) * 2.0 * _gaussian_tail_moment(tau)


def weak_threshold(delta: float | np.ndarray) -> float | np.ndarray:
    """ρ_W(δ), the ℓ1 weak threshold in Donoho–Tanner coordinates (δ = m/d, ρ = k/m).

    Solves δ(τ) = δ on the parametric curve of `l1_statistical_dimension` and returns ρ = ε(τ)/δ.
    Values of δ ≥ 1 give ρ = 1 (square systems recover every signal); δ must be > 0.

    Parameters
    ----------
    delta : float or array
        Undersampling ratio(s) m/d, in (0, ∞).

    Returns
    -------
    float or ndarray
        ρ_W at each δ, in (0, 1].
    """
    values = np.asarray(delta, dtype=float)
    if np.any(~np.isfinite(values)) or np.any(values < DELTA_MIN):
        raise ValueError(f"delta must be finite and >= {DELTA_MIN:g}, got {delta!r}")
    out = np.vectorize(_weak_threshold_scalar, otypes=[float])(values)
    return float(out) if out.ndim == 0 else out


def _weak_threshold_scalar(delta: float) -> float:
    if delta >= 1.0:
        return 1.0
    tau = scipy.optimize.brentq(lambda t: _delta_at(t) - delta, 0.0, _TAU_MAX, xtol=1e-14, rtol=1e-15)
    return _optimal_epsilon(tau) / delta


def weak_threshold_state_evolution(delta: float) -> float:
    """ρ_W(δ) by the closed form of Donoho, Maleki & Montanari 2009 (an independent check of `weak_threshold`).

    ρ(δ) = max_{z≥0} [1 − (2/δ)g(z)] / [1 + z² − 2g(z)], g(z) = (1 + z²)Φ(−z) − zφ(z).
    """
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta={delta} must lie in (0, 1)")

    def negative_rho(z: float) -> float:
        g = _gaussian_tail_moment(z)
        return -(1.0 - 2.0 * g / delta) / (1.0 + z * z - 2.0 * g)

    best = scipy.optimize.minimize_scalar(negative_rho, bounds=(0.0, 20.0), method="bounded",
                                          options={"xatol": 1e-12})
    return float(-best.fun)


def weak_threshold_curve(deltas: np.ndarray | None = None) -> pd.DataFrame:
    """The curve (δ, ρ_W(δ)) as a DataFrame with columns ``delta`` and ``rho``, for overlays.

    By default 200 points with δ from 0.005 to 1.
    """
    deltas = np.linspace(0.005, 1.0, 200) if deltas is None else np.asarray(deltas, dtype=float)
    return pd.DataFrame({"delta": deltas, "rho": weak_threshold(deltas)})
