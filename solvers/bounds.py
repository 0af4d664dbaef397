"""Per-iteration error bounds of the theorems, and the wiring that picks the theorems of a solver.

Every bound function takes the previous error e_t = ‖x_t − x*‖₂ first and the constants of the instance as
keyword floats, and returns ``(bound on e_{t+1}, note)``. The note is ``""`` when the assumptions hold and
otherwise names the failing condition (``"assumption: delta_3k=0.71 >= 1/sqrt(3)=0.577"``); the bound is then
NaN. `bound_for` adds one more kind of note: ``"estimate: ..."`` when the assumptions hold only for sampled
constants that are not certified, in which case the value is computed from them and is not a guarantee.

A solver may have several theorems (`THEOREMS`, e.g. IHT: F&R Thm 6.18 and the RSC/RSS rate); `bound_for`
draws the tightest one whose assumptions hold, `theorem_bounds` returns each of them.

All results but `iht_noisy_rate` are for noiseless instances (y = Ax*, x* the minimiser); with noise they are
NaN with a note, and IHT's noisy theorem bounds the error to the generating x* (a floor set by ‖y − Ax*‖).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from problems.base import Problem
from problems.conditioning import (gradient_norm_at_star_of, hessian_lipschitz_of, is_positive_definite,
                                   local_constants_of, newton_offset_of, noise_norm_of, quick_sparse_extremes_of,
                                   restricted_smoothness_of, sparse_spectrum_of, spectral_constants,
                                   stationarity_of)
from problems.sparse_spectra import EXACT, rip_from_extremes

log = logging.getLogger(__name__)

NAN = float("nan")
Bound = tuple[float, str]

#: δ thresholds of the RIP theorems.
IHT_DELTA_MAX = 1.0 / math.sqrt(3.0)                         # F&R Thm 6.18 (IHT and HTP): δ_3s < 0.5773
COSAMP_DELTA_MAX = math.sqrt((math.sqrt(11.0 / 3.0) - 1) / 4)  # F&R Thm 6.28: δ_4s < 0.4782
SP_DELTA_MAX = math.sqrt(math.sqrt(5.0) - 2.0)                # Song, Xia & Liu 2014: δ_3s < 0.4859
#: ‖∇f(x*)‖/‖∇f(x0)‖ above which x* is not taken as the unconstrained minimiser (A1; noiseless setting).
STATIONARITY_TOL = 1e-8


def failed(condition: str) -> Bound:
    """NaN with the note naming the failing assumption."""
    return NAN, f"assumption: {condition}"


# ------------------------------------------------------------------------ quadratic rates (Wu et al. 2024)
def quadratic_rate_assumptions(*, mu: float, M: float, k: int, k_star: int, d: int) -> str:
    """The failing condition among A2 (μ > 0), A4 (0 ≤ M < ∞) and k* ≤ k ≤ d, or ``""``."""
    if not k_star <= k <= d:
        return f"k_star={k_star} <= k={k} <= d={d} fails"
    if not mu > 0:
        return f"mu={mu:.3g} <= 0 (A2 strong convexity)"
    if not 0 <= M < np.inf:
        return f"M={M:.3g} is not a finite Hessian-Lipschitz constant (A4)"
    return ""


def newton_factor(mu: float, M: float) -> float:
    """M/(2μ): ‖x_t − H_t⁻¹∇f(x_t) − x*‖ ≤ (M/(2μ))‖x_t − x*‖² (Nesterov 2018, Thm 1.2.5)."""
    return M / (2.0 * mu)


def newton_error(previous_error: float, mu: float, M: float, newton_offset: float = 0.0) -> float:
    """Bound on ‖θ⁺ − x*‖ for the Newton point θ⁺ = x_t − H_t⁻¹∇f(x_t): (M/(2μ))·e_t² + ``newton_offset``.

    Writing ∇f(x_t) = ∇f(x*) + H̄(x_t − x*) gives θ⁺ − x* = H_t⁻¹(H_t − H̄)(x_t − x*) − H_t⁻¹∇f(x*): the
    first term is the curvature change (Nesterov's M/(2μ)e_t²), the second vanishes only when x* is exactly
    stationary. ``newton_offset`` bounds it (and the rounding of the computed θ⁺, `newton_offset` in the
    wiring), so a bound is never below the error of an instance whose x* is a minimiser only up to 1e-8.
    """
    return newton_factor(mu, M) * previous_error**2 + newton_offset


def iobs_theorem1_stated(previous_error: float, *, mu: float, L: float, M: float, d: int, k: int,
                         k_star: int, newton_offset: float = 0.0) -> Bound:
    """I-OBS (Algorithm 1, Option 2), Theorem 1 of Wu et al. (2024) as printed:

        e_{t+1} ≤ (1 + sqrt((L/μ)·(d − k*)/(d − k))) · (M/(2μ)) · e_t²,

    under A1–A4 (μ strong convexity, L restricted smoothness over (d−k)-sparse directions at k-sparse points,
    M restricted Hessian-Lipschitz over (2k+k*)-sparse pairs) and k* ≤ k ≤ d. Valid but loose (the ratio is
    ≥ 1); undefined at k = d (division by d − k = 0), where NaN is returned with a note.
    """
    note = quadratic_rate_assumptions(mu=mu, M=M, k=k, k_star=k_star, d=d)
    if note:
        return failed(note)
    if k == d:
        return failed("k = d: the stated ratio (d-k*)/(d-k) divides by zero; use the corrected ratio")
    ratio = (d - k_star) / (d - k)
    return (1.0 + math.sqrt(L / mu * ratio)) * newton_error(previous_error, mu, M, newton_offset), ""


def iobs_theorem1_corrected(previous_error: float, *, mu: float, L: float, M: float, d: int, k: int,
                            k_star: int, newton_offset: float = 0.0) -> Bound:
    """Theorem 1 of Wu et al. (2024) with the ratio Lemma 8 actually gives (paper-notes §3.3 item 1):

        e_{t+1} ≤ (1 + sqrt((L/μ)·(d − k)/(d − k*))) · (M/(2μ)) · e_t².

    Lemma 8 with u = θ⁺ (‖u‖₀ ≤ d) and v = θ* (‖v‖₀ = k*) bounds ‖T_k(θ⁺) − θ⁺‖² by (d−k)/(d−k*)·‖θ⁺ − θ*‖²;
    the rest of the proof is unchanged (its Lemma 7 is false in general, but the step only needs
    H⁻¹H^S H⁻¹ ⪯ H⁻¹, which holds; notes §3.3 item 2). At k = d the bound is the Newton bound (M/(2μ))e_t².
    """
    note = quadratic_rate_assumptions(mu=mu, M=M, k=k, k_star=k_star, d=d)
    if note:
        return failed(note)
    ratio = (d - k) / (d - k_star) if d > k_star else 0.0
    return (1.0 + math.sqrt(L / mu * ratio)) * newton_error(previous_error, mu, M, newton_offset), ""


def topk_iobs_lemma3(previous_error: float, *, mu: float, M: float, k: int, k_star: int, d: int,
                     newton_offset: float = 0.0) -> Bound:
    """Topk-I-OBS x_{t+1} = T_k(x_t − H_t⁻¹∇f(x_t)), Lemma 3 of Wu et al. (2024):

        e_{t+1} ≤ (1 + sqrt(k*/k)) · (M/(2μ)) · e_t²,

    under A1, A2, A4 and k* ≤ k (Lemma 8 applied on supp(x_{t+1}) ∪ supp(x*), then the Newton bound).
    Lemma 8 bounds ‖T_k(θ⁺) − x*‖ by (1 + sqrt(k*/k))·‖θ⁺ − x*‖ for any θ⁺, so the Newton factor
    M/(2μ)·e_t² is replaced by `newton_error` (with the ``newton_offset`` of a not exactly stationary x*).
    """
    note = quadratic_rate_assumptions(mu=mu, M=M, k=k, k_star=k_star, d=d)
    if note:
        return failed(note)
    return (1.0 + math.sqrt(k_star / k)) * newton_error(previous_error, mu, M, newton_offset), ""


# --------------------------------------------------------------------------- linear rates under the RIP
def iht_rip_rate(*, delta_3k: float) -> Bound:
    """IHT x_{t+1} = H_s(x_t + Aᵀ(y − Ax_t)) (unit step), Foucart & Rauhut (2013), Theorem 6.18:
    ρ = √3·δ_3s when δ_3s < 1/√3, for s-sparse x* (s = the budget k ≥ k*); noiseless case
    e_{t+1} ≤ ρ e_t. For a step η apply it to √η·A (the iteration is the same), see `bound_for`."""
    if not delta_3k < IHT_DELTA_MAX:
        return failed(f"delta_3k={delta_3k:.3g} >= 1/sqrt(3)={IHT_DELTA_MAX:.4f}")
    return math.sqrt(3.0) * delta_3k, ""


def htp_rip_rate(*, delta_2k: float, delta_3k: float) -> Bound:
    """HTP (support of H_s(x_t + Aᵀ(y − Ax_t)), then least squares on it), Foucart & Rauhut (2013),
    Theorem 6.18: ρ = sqrt(2δ_3s² / (1 − δ_2s²)) when δ_3s < 1/√3."""
    if not delta_3k < IHT_DELTA_MAX:
        return failed(f"delta_3k={delta_3k:.3g} >= 1/sqrt(3)={IHT_DELTA_MAX:.4f}")
    return math.sqrt(2.0 * delta_3k**2 / (1.0 - delta_2k**2)), ""


def cosamp_rip_rate(*, delta_4k: float) -> Bound:
    """CoSaMP, Foucart & Rauhut (2013), Theorem 6.28: ρ = sqrt(2δ_4s²(1 + 3δ_4s²)/(1 − δ_4s²)), which is < 1
    exactly when δ_4s < sqrt((sqrt(11/3) − 1)/4) ≈ 0.4782 (the theorem's hypothesis)."""
    if not delta_4k < COSAMP_DELTA_MAX:
        return failed(f"delta_4k={delta_4k:.3g} >= {COSAMP_DELTA_MAX:.4f}")
    return math.sqrt(2.0 * delta_4k**2 * (1.0 + 3.0 * delta_4k**2) / (1.0 - delta_4k**2)), ""


def sp_rip_rate(*, delta_3k: float) -> Bound:
    """Subspace pursuit (Dai & Milenkovic 2009), Song, Xia & Liu (2014, arXiv:1309.6073):

        e_{t+1} ≤ ρ e_t,  ρ = sqrt(2δ²(1 + δ²)) / (1 − δ²),  δ = δ_3s,

    which is < 1 exactly when δ_3s < sqrt(√5 − 2) ≈ 0.4859, the paper's threshold. The constant is checked
    by its derivation from the standard lemmas of Foucart & Rauhut (2013, §6.3–6.4), each with δ ≤ δ_3s
    (x s-sparse, x_t the least-squares fit on its support S_t, r = A(x − x_t)):

    1. identification, Γ = the s largest |Aᵀr|, U = S_t ∪ Γ: ‖x_{Ū}‖ ≤ √2·δ_3s·‖x − x_t‖;
    2. least squares u on U (|U| ≤ 2s): ‖(x − u)_U‖ ≤ δ_3s·‖x_{Ū}‖ / sqrt(1 − δ_3s²);
    3. pruning, S_{t+1} = the s largest |u|: ‖x_{U∖S_{t+1}}‖ ≤ √2·‖(x − u)_U‖, so
       ‖x_{S̄_{t+1}}‖² ≤ (1 + 2δ²/(1 − δ²))·‖x_{Ū}‖² = (1 + δ²)/(1 − δ²)·‖x_{Ū}‖²;
    4. least squares on S_{t+1}: ‖x − x_{t+1}‖ ≤ ‖x_{S̄_{t+1}}‖ / sqrt(1 − δ_2s²).

    The product of the four factors is ρ. SP's iterates do not change when A is rescaled, so `bound_for`
    uses the δ of the best rescaling c·A.
    """
    if not delta_3k < SP_DELTA_MAX:
        return failed(f"delta_3k={delta_3k:.3g} >= {SP_DELTA_MAX:.4f}")
    return math.sqrt(2.0 * delta_3k**2 * (1.0 + delta_3k**2)) / (1.0 - delta_3k**2), ""


def iht_rsc_rss_rate(*, delta_2k_plus_k_star: float, k: int, k_star: int) -> Bound:
    """IHT under restricted strong convexity and smoothness, for regression (any fixed step η):

        e_{t+1} ≤ ρ e_t,  ρ = (1 + sqrt(k*/k)) · max(|1 − ηα|, |1 − ηβ|),

    α ≤ λ(∇²f restricted to any (2k + k*)-sparse support) ≤ β; the max is δ_{2k+k*} of √η·A for least
    squares (argument ``delta_2k_plus_k_star``). At η = 1/β, ρ = (1 + sqrt(k*/k))(1 − 1/κ), κ = β/α, which is
    < 1 exactly when k > (κ − 1)²k*: a larger budget k buys convergence at any restricted condition number.

    This is the setting of Jain, Tewari & Kar (2014, NeurIPS, "On iterative hard thresholding methods for
    high-dimensional M-estimation"), whose Theorem 1 proves f(x_t) − f(x*) ≤ ε after O(κ log(1/ε)) steps
    when k ≥ 32κ²k* and η = 2/(3β), with constants left inside the O(·). The explicit rate here uses the same
    two ingredients, their Lemma 1 (for z on an index set I, ‖T_k(z) − z‖² ≤ (|I| − k)/(|I| − k*)·‖x* − z‖²;
    Lemma 8 of Wu et al. 2024) and RSC/RSS: with u = x_t − η∇f(x_t) and V = supp(x_{t+1}) ∪ supp(x*)
    (|V| ≤ k + k*), ‖x_{t+1} − x*‖ ≤ (1 + sqrt(k*/k))·‖(u − x*)_V‖, and u − x* = (I − ηH̄)(x_t − x*) with
    H̄ = ∫₀¹∇²f(x* + τ(x_t − x*))dτ restricted to V ∪ supp(x_t) (≤ 2k + k* indices). With k = k*, η = 1 it
    is the classical 2δ_3s contraction; F&R's √3·δ_3s (`iht_rip_rate`) is tighter there, this one wins for
    k ≫ k* and ill-conditioned designs. Needs ρ < 1 (linear convergence).
    """
    if not k_star <= k:
        return failed(f"k={k} < k_star={k_star}")
    rho = (1.0 + math.sqrt(k_star / k)) * delta_2k_plus_k_star
    if not rho < 1:
        return failed(f"(1+sqrt(k*/k))*delta_2k+k*={rho:.3g} >= 1 (needs k > (kappa-1)^2 k* at step 1/beta)")
    return rho, ""


def iht_noisy_rate(*, delta_2k: float, delta_3k: float) -> tuple[float, float, str]:
    """IHT with measurement noise, y = Ax* + e (x* s-sparse, unit step; for a step η apply it to √η·A, √η·e):

        e_{t+1} ≤ ρ e_t + τ‖e‖₂,  ρ = 2δ_3s,  τ = 2·sqrt(1 + δ_2s);  returns (ρ, τ, note).

    The standard argument (Blumensath & Davies 2009; Foucart & Rauhut 2013, §6.3, whose Theorem 6.18 sharpens
    ρ to √3·δ_3s): x_{t+1} is the best s-term approximation of u = x_t + Aᵀ(y − Ax_t), so
    ‖u − x_{t+1}‖² ≤ ‖u − x*‖², i.e. ‖x_{t+1} − x*‖² ≤ 2⟨(u − x*)_V, x_{t+1} − x*⟩ with V = supp(x_{t+1} − x*),
    |V| ≤ 2s; and u − x* = (I − AᵀA)(x_t − x*) + Aᵀe, where ‖((I − AᵀA)h)_V‖ ≤ δ_3s‖h‖ (h, V within 3s
    indices) and ‖A_Vᵀe‖ ≤ sqrt(1 + δ_2s)‖e‖. The errors then settle below τ‖e‖/(1 − ρ). Needs ρ < 1.
    """
    if not delta_3k < 0.5:
        return NAN, NAN, f"assumption: delta_3k={delta_3k:.3g} >= 1/2 (2*delta_3k < 1)"
    return 2.0 * delta_3k, 2.0 * math.sqrt(1.0 + delta_2k), ""


def linear_bound(previous_error: float, rate: Bound) -> Bound:
    """e_{t+1} ≤ ρ e_t from a ``(ρ, note)`` pair."""
    rho, note = rate
    return (rho * previous_error if not note else NAN), note


def envelope(e0: float, one_step: Callable[[float], Bound], n_steps: int) -> np.ndarray:
    """The bound curve [e0, b1, …, b_n] with b_{t+1} = one_step(b_t)[0] (e.g. ``functools.partial`` of a
    bound above); NaN from the first step whose note is not empty."""
    curve = np.full(n_steps + 1, NAN)
    curve[0] = e0
    for t in range(n_steps):
        value, note = one_step(curve[t])
        if note:
            break
        curve[t + 1] = value
    return curve


# ------------------------------------------------------------------------------ wiring: solver -> theorem


def budget(solver: Any, problem: Problem) -> int:
    """The sparsity budget k the solver runs with (``k_`` once validated)."""
    k = getattr(solver, "k_", None)
    return int(k) if k is not None else int(solver.sparsity(problem))


def step_size_of(solver: Any, problem: Problem) -> float:
    """The fixed step η of a gradient-type solver, as the solver itself computes it (``fixed_step``)."""
    return float(solver.fixed_step(problem))


def full_newton_note(solver: Any) -> str:
    """The parameter that makes a Newton-type step differ from the full step x − H⁻¹∇f, or ``""``."""
    neutral_values = (("newton_step", 1.0), ("step_size", 1.0), ("step_scale", 1.0), ("damping", 0.0))
    for name, neutral in neutral_values:
        value = getattr(solver, name, None)
        if value is not None and value != neutral:
            return f"the full Newton step ({name}={value:g}, the theorem needs {neutral:g})"
    return ""


def certified_value(constants: dict[str, dict[str, Any]], name: str, direction: str) -> tuple[float, str]:
    """(value, "") from an exact entry or a certified ``<name>_<direction>`` bound; else the estimate and its
    label, e.g. (0.31, "mu: estimate")."""
    entry = constants.get(name)
    if entry is not None and entry["how"] == EXACT:
        return entry["value"], ""
    bound = constants.get(f"{name}_{direction}")
    if bound is not None:
        return bound["value"], ""
    return (entry["value"], f"{name}: {entry['how']}") if entry is not None else (NAN, f"{name}: unknown")


def quadratic_constants(problem: Problem, k: int, previous_error: float) -> dict[str, dict[str, Any]]:
    """μ, M (and restricted L) for the Newton-type theorems: certified values on the ball of radius e_t
    around x* when the problem has them (`local_constants_of`), else global exact or sampled ones."""
    local = local_constants_of(problem, k, previous_error)
    if local:
        return spectral_constants(problem) | local
    return spectral_constants(problem) | hessian_lipschitz_of(problem, k)


#: Rounding allowance of a computed Newton point, in units of (rows + d)·ε·κ(H)·(‖x*‖ + e_t): the backward
#: error of the Cholesky solve (≈ d·ε·‖H‖) and of the gradient (≈ rows·ε) amplified by κ(H). Measured over
#: 300 seeds of `make_least_squares` with κ up to 1e8 (tests/test_rounding_sweeps.py), the computed error
#: stayed below a tenth of it.
NEWTON_ROUNDING = 1.0


def newton_offset(problem: Problem, previous_error: float, mu: float) -> float:
    """The ``newton_offset`` of the Newton-type bounds on ``problem`` at e_t = ``previous_error``: the part of
    ‖θ⁺ − x*‖ that does not shrink with e_t, plus a floating-point allowance.

    Exact for a quadratic, where θ⁺ is the least-squares point whatever x_t is: ‖H⁻¹∇f(x*)‖
    (`problems.conditioning.newton_offset_of`); otherwise ‖∇f(x*)‖/μ with the certified μ (‖H_t⁻¹v‖ ≤ ‖v‖/μ).
    The allowance is `NEWTON_ROUNDING`·(rows + d)·ε·κ·(‖x*‖ + e_t), κ = L/μ at x*.
    """
    if problem.hessian_is_constant:
        offset = newton_offset_of(problem)
    else:
        offset = gradient_norm_at_star_of(problem) / mu if mu > 0 else np.inf
    kappa = spectral_constants(problem)["condition_number"]["value"]
    rows = int(getattr(problem, "m", problem.d))
    scale = float(np.linalg.norm(problem.x_star)) + previous_error
    return offset + NEWTON_ROUNDING * (rows + problem.d) * np.finfo(float).eps * kappa * scale


def quadratic_rule(theorem: Callable[..., Bound]) -> Callable[[Any, Problem, float], Bound]:
    """Wire Theorem 1 / Lemma 3: certified μ (lower), M (upper) and restricted L (upper, Theorem 1), with
    the `newton_offset` of the instance. On a quadratic (M = 0) the bound is the one-step error of the exact
    Newton point, factor·(‖H⁻¹∇f(x*)‖ + rounding), with the exact μ and L (L ≥ the restricted L of Theorem 1)."""
    def rule(solver: Any, problem: Problem, previous_error: float) -> Bound:
        note = full_newton_note(solver)
        if note:
            return failed(note)
        k = budget(solver, problem)
        if problem.hessian_is_constant:
            positive = is_positive_definite(problem)
            note = quadratic_rate_assumptions(mu=1.0 if positive else 0.0, M=0.0, k=k,
                                              k_star=problem.k_star, d=problem.d)
            if note:
                return failed(note)
            spectral = spectral_constants(problem)
            values = dict(mu=spectral["mu"]["value"], M=0.0, k=k, k_star=problem.k_star, d=problem.d,
                          newton_offset=newton_offset(problem, previous_error, spectral["mu"]["value"]))
            if theorem is not topk_iobs_lemma3:
                values["L"] = spectral["L"]["value"]
            return theorem(previous_error, **values)
        constants = quadratic_constants(problem, k, previous_error)
        mu, mu_note = certified_value(constants, "mu", "lower")
        M, M_note = certified_value(constants, "M", "upper")
        values = dict(mu=mu, M=M, k=k, k_star=problem.k_star, d=problem.d,
                      newton_offset=newton_offset(problem, previous_error, mu))
        L_note = ""
        if theorem is not topk_iobs_lemma3:  # (L matters even at M = 0: the offset term is never 0)
            if "L_restricted_upper" not in constants:
                constants = constants | restricted_smoothness_of(problem, k)
            values["L"], L_note = certified_value(constants, "L_restricted", "upper")
        value, note = theorem(previous_error, **values)
        estimates = [n for n in (mu_note, M_note, L_note) if n]
        if note or not estimates:
            return value, note
        return value, "estimate: not certified (" + "; ".join(estimates) + ")"
    return rule


def scaled_delta(lambda_min: float, lambda_max: float, step: float | None) -> float:
    """δ_s of √step·A, or of the best rescaling c·A when ``step`` is None (for algorithms whose iterates do
    not change when A is rescaled: CoSaMP, SP): min_c δ_s(cA) = (λ_max − λ_min)/(λ_max + λ_min)."""
    if step is None:
        return (lambda_max - lambda_min) / (lambda_max + lambda_min) if lambda_max + lambda_min > 0 else np.inf
    return rip_from_extremes(lambda_min, lambda_max, step)


def certify(evaluate: Callable[[dict[str, float]], Bound], certified: dict[str, float],
            sampled: dict[str, float], exact: bool) -> Bound:
    """``evaluate(deltas)`` (a one-step bound) with the certified δ's when they satisfy the theorem; NaN when
    the (exact or sampled lower-bound) δ's violate it; otherwise the value from the sampled δ's with an
    ``estimate:`` note."""
    value, note = evaluate(certified)
    if not note or exact:
        return value, note
    value, sampled_note = evaluate(sampled)
    if sampled_note:
        return NAN, f"{sampled_note} (sampled lower bound)"
    return value, f"estimate: sampled {', '.join(sampled)} satisfy the theorem, the certified upper bounds do not"


def rip_rule(rate: Callable[..., Any], levels: dict[str, Callable[[int, int], int]],
             step_rule: Callable[[Any, Problem], float | None], budget_aware: bool = False,
             noisy: bool = False) -> Callable[[Any, Problem, float], Bound]:
    """Wire a theorem stated with restricted isometry constants: ``levels`` maps each δ argument of ``rate``
    to its sparsity s(k, k*); the δ's are those of √η·A (``step_rule`` gives η, None = best rescaling).
    ``budget_aware`` rates also take ``k`` and ``k_star``. A rate returns ``(ρ, note)`` (bound ρ·e_t), or
    with ``noisy`` ``(ρ, τ, note)`` (bound ρ·e_t + τ·‖√η·(y − Ax*)‖).

    A few random supports (`quick_sparse_extremes_of`, no d×d work) are tried first: when they already violate
    the hypothesis the answer is NaN without the full search; otherwise exact / sampled + certified δ's.
    """
    def rule(solver: Any, problem: Problem, previous_error: float) -> Bound:
        if "least_squares" not in problem.capabilities:
            return failed("a least-squares problem (the theorem is stated for f = ½‖Ax − y‖²)")
        k = budget(solver, problem)
        if k < problem.k_star:
            return failed(f"k={k} < k_star={problem.k_star}")
        theorem = functools.partial(rate, k=k, k_star=problem.k_star) if budget_aware else rate
        sparsities = {name: level(k, problem.k_star) for name, level in levels.items()}
        step = step_rule(solver, problem)
        matrix = "best rescaling of A" if step is None else f"sqrt(step)*A, step={step:.4g}"
        if noisy:
            noise = math.sqrt(step if step is not None else 1.0) * noise_norm_of(problem)

            def evaluate(deltas: dict[str, float]) -> Bound:
                rho, tau, note = theorem(**deltas)
                return (NAN, note) if note else (rho * previous_error + tau * noise, "")
        else:
            def evaluate(deltas: dict[str, float]) -> Bound:
                return linear_bound(previous_error, theorem(**deltas))
        quick = {name: scaled_delta(*quick_sparse_extremes_of(problem, s), step) for name, s in sparsities.items()}
        quick_note = evaluate(quick)[1]
        if quick_note:  # a few random supports already violate the assumption: no need for the full search
            return NAN, f"{quick_note} (sampled lower bound) [{matrix}]"
        certified, sampled, exact = {}, {}, True
        for name, s in sparsities.items():
            spectrum = sparse_spectrum_of(problem, s)
            certified[name] = scaled_delta(spectrum.lambda_min_lower, spectrum.lambda_max_upper, step)
            sampled[name] = scaled_delta(spectrum.lambda_min, spectrum.lambda_max, step)
            exact = exact and spectrum.exact
        value, note = certify(evaluate, certified, sampled, exact)
        return value, (f"{note} [{matrix}]" if note else "")
    return rule


def multiple_of_k(multiple: int) -> Callable[[int, int], int]:
    """The sparsity level multiple·k (δ_2k, δ_3k, δ_4k of the RIP theorems)."""
    return lambda k, k_star: multiple * k


@dataclass(frozen=True)
class Theorem:
    """A result `bound_for` can draw: its citation, the rule that evaluates it on (solver, problem, e_t), and
    what it assumes of the iterate x_t it starts from (checked on the first step, from ``problem.x0``; later
    iterates of these solvers satisfy it by construction):

    - ``"any"``: nothing (the Newton-type results);
    - ``"sparse"``: x_t is k-sparse (the RIP and RSC/RSS analyses of IHT, HTP, CoSaMP);
    - ``"fitted"``: x_t is k-sparse and the least-squares fit on its support, so Aᵀ(y − Ax_t) vanishes there
      (step 1 of `sp_rip_rate`'s derivation); x_0 = 0 qualifies.
    """

    name: str
    rule: Callable[[Any, Problem, float], Bound]
    start: str = "any"
    #: Whether the bound holds with measurement noise (x* the generating signal, not a minimiser of f).
    noisy: bool = False
    #: The convergence order the theorem proves: 1 (linear, e_{t+1} ≤ ρe_t) or 2 (quadratic, ≤ c·e_t²).
    order: int = 1


#: solver class -> its theorems; `bound_for` draws the tightest one whose assumptions hold. Keyed by the exact
#: class (a subclass, e.g. stochastic IHT, is a different method and registers its own), filled by
#: `register_theorems` — also from a user's module, for a solver outside the package.
THEOREMS: dict[type, tuple[Theorem, ...]] = {}
#: solver class -> why it has no bound (others get the generic note).
NO_BOUND_REASONS: dict[type, str] = {}


def register_theorems(solver_class: type, *theorems: Theorem) -> None:
    """Declare the theorems of a solver class (replacing earlier ones); `BoundTracker` then draws them on every
    run of that class. A user's solver registers from its own module::

        from solvers.bounds import Theorem, register_theorems
        register_theorems(MyIHT, Theorem("my rate", lambda solver, problem, e: (0.9 * e, "")))
    """
    THEOREMS[solver_class] = tuple(theorems)


def register_no_bound(solver_class: type, reason: str) -> None:
    """Say why a solver class has no bound (shown in ``bound_note`` instead of the generic note)."""
    NO_BOUND_REASONS[solver_class] = reason


def theorems_of(solver: Any) -> tuple[Theorem, ...]:
    """The theorems registered for ``solver`` (an instance or a class; a registry name also works)."""
    if isinstance(solver, str):
        from solvers.base import REGISTRY

        solver = REGISTRY.get(solver)
    klass = solver if isinstance(solver, type) else type(solver)
    return THEOREMS.get(klass, ())


def theorem_label(solver: Any) -> str:
    """The theorems of ``solver`` as one label ("-" when it has none)."""
    return " | ".join(t.name for t in theorems_of(solver)) or "-"


def theorem_order(solver: Any) -> int | None:
    """The highest convergence order among the theorems of ``solver`` (None without a theorem)."""
    theorems = theorems_of(solver)
    return max(t.order for t in theorems) if theorems else None


def no_bound(solver: Any) -> Bound:
    """NaN with the note of a solver that has no theorem."""
    name = solver if isinstance(solver, str) else getattr(solver, "name", type(solver).__name__)
    klass = solver if isinstance(solver, type) else type(solver)
    reason = NO_BOUND_REASONS.get(klass)
    return NAN, f"no bound for solver {name}" + (f": {reason}" if reason else "")


def start_condition(start: str, solver: Any, problem: Problem) -> str:
    """The failing condition of a theorem's assumption on x_0 (`Theorem.start`), or ``""``."""
    x0 = np.asarray(problem.x0)
    if start == "any" or not np.any(x0):
        return ""
    k = budget(solver, problem)
    if np.count_nonzero(x0) > k:
        return f"x_0 is k-sparse (it has {np.count_nonzero(x0)} nonzeros, k={k}); the first step is not covered"
    if start == "fitted" and "least_squares" in problem.capabilities:
        support = np.flatnonzero(x0)
        correlation = np.abs(problem.A[:, support].T @ (problem.y - problem.A @ x0))
        if correlation.max() > 1e-10 * max(float(np.linalg.norm(problem.A.T @ problem.y)), 1e-300):
            return "x_0 is the least-squares fit on its support; the first step is not covered"
    return ""


def theorem_bounds(solver: Any, problem: Problem, previous_error: float,
                   iteration: int | None = None) -> list[tuple[str, float, str]]:
    """(theorem name, bound, note) for each theorem of ``solver`` (see `bound_for` for the notes); [] when the
    solver has none. ``iteration`` is the step being bounded (x_{iteration} from x_{iteration−1}); None or 1
    means the step from ``problem.x0``, whose assumptions (`Theorem.start`) are checked. Never raises: a
    failure becomes a ``"bound failed: ..."`` note."""
    name = getattr(solver, "name", type(solver).__name__)
    theorems = theorems_of(solver)
    noise_std = float(getattr(problem, "noise_std", 0.0) or 0.0)
    first_step = iteration is None or iteration <= 1
    out = []
    for theorem in theorems:
        if noise_std > 0 and not theorem.noisy:
            value, note = failed(f"noiseless instance (noise_std={noise_std:.3g} > 0)")
        elif not np.isfinite(previous_error):
            value, note = NAN, "previous error is not finite"
        else:
            try:
                start_note = start_condition(theorem.start, solver, problem) if first_step else ""
                gradient_at_star = 0.0 if theorem.noisy else stationarity_of(problem)
                if start_note:
                    value, note = failed(start_note)
                elif gradient_at_star > STATIONARITY_TOL:
                    value, note = failed("x* is the unconstrained minimiser "
                                         f"(A1; relative gradient at x* {gradient_at_star:.2g})")
                else:
                    value, note = theorem.rule(solver, problem, float(previous_error))
            except Exception as exc:  # a bound must never break a run
                log.warning("bound for %s (%s) failed: %s", name, theorem.name, exc)
                value, note = NAN, f"bound failed: {type(exc).__name__}: {exc}"
        out.append((theorem.name, value, note))
    return out


def bound_for(solver: Any, problem: Problem, previous_error: float, iteration: int | None = None) -> Bound:
    """The bound on ‖x_{t+1} − x*‖ given ‖x_t − x*‖ for ``solver`` on ``problem``: the smallest over the
    solver's `THEOREMS` whose assumptions hold with certified constants; else the smallest ``"estimate: ..."``
    value; else NaN with the failing condition of the first theorem that covers the setting (noisy or not).
    ``iteration``: see `theorem_bounds`.

    Constants come from the per-instance cache of `problems.conditioning`, so only the first call of a run
    computes anything. Returns NaN and ``"no bound for solver X"`` when no theorem applies, NaN and
    ``"assumption: ..."`` when one fails, and never raises (a failure becomes a ``"bound failed: ..."`` note).
    """
    results = theorem_bounds(solver, problem, previous_error, iteration)
    if not results:
        return no_bound(solver)
    for wanted in (lambda note: note == "", lambda note: note.startswith("estimate")):
        candidates = [(value, note) for _, value, note in results if wanted(note) and np.isfinite(value)]
        if candidates:
            return min(candidates, key=lambda pair: pair[0])
    # No theorem holds: name the failing condition of the first theorem made for this setting (on a noisy
    # instance, the noise-aware one's condition says more than "noiseless instance").
    relevant = [r for r in results if not r[2].startswith("assumption: noiseless instance")] or results
    return relevant[0][1], relevant[0][2]


# ----------------------------------------------------------------------- the package's solvers' theorems
def _register_package_theorems() -> None:
    from solvers.hard_thresholding import HTP, IHT, NIHT
    from solvers.iobs import OBSIOBS, ExactIOBS, TopkIOBS
    from solvers.pursuit import OMP, CoSaMP, SubspacePursuit

    register_theorems(ExactIOBS, Theorem("Wu et al. 2024, Theorem 1, corrected ratio (d-k)/(d-k*)",
                                         quadratic_rule(iobs_theorem1_corrected), order=2))
    register_theorems(TopkIOBS, Theorem("Wu et al. 2024, Lemma 3", quadratic_rule(topk_iobs_lemma3), order=2))
    register_theorems(
        IHT,
        Theorem("Foucart & Rauhut 2013, Theorem 6.18 (IHT) for sqrt(step)*A",
                rip_rule(iht_rip_rate, {"delta_3k": multiple_of_k(3)}, step_size_of), "sparse"),
        Theorem("RSC/RSS rate in the setting of Jain, Tewari & Kar 2014 (restricted eigenvalues at 2k+k*)",
                rip_rule(iht_rsc_rss_rate, {"delta_2k_plus_k_star": lambda k, k_star: 2 * k + k_star},
                         step_size_of, budget_aware=True), "sparse"),
        Theorem("IHT with measurement noise, 2*delta_3k + noise floor (Blumensath & Davies 2009 argument)",
                rip_rule(iht_noisy_rate, {"delta_2k": multiple_of_k(2), "delta_3k": multiple_of_k(3)},
                         step_size_of, noisy=True), "sparse", noisy=True))
    register_theorems(HTP, Theorem("Foucart & Rauhut 2013, Theorem 6.18 (HTP) for sqrt(step)*A",
                                   rip_rule(htp_rip_rate, {"delta_2k": multiple_of_k(2), "delta_3k": multiple_of_k(3)},
                                            step_size_of), "sparse"))
    register_theorems(CoSaMP, Theorem("Foucart & Rauhut 2013, Theorem 6.28, A optimally rescaled",
                                      rip_rule(cosamp_rip_rate, {"delta_4k": multiple_of_k(4)}, lambda s, p: None),
                                      "sparse"))
    register_theorems(SubspacePursuit, Theorem("Song, Xia & Liu 2014 (arXiv:1309.6073), SP, A optimally rescaled",
                                               rip_rule(sp_rip_rate, {"delta_3k": multiple_of_k(3)},
                                                        lambda s, p: None), "fitted"))
    register_no_bound(NIHT, "adaptive step size (the Blumensath & Davies 2010 guarantee is not implemented)")
    register_no_bound(OMP, "no per-iteration contraction (OMP guarantees are exact recovery after k steps)")
    register_no_bound(OBSIOBS, "Theorem 1 needs the optimal support, not the greedy OBS one")
    _register_newton_pursuit()
    _register_newton_step()


def _register_newton_step() -> None:
    """NSIHT is Topk-I-OBS on least squares (`solvers.newton_step`), so Lemma 3 bounds it under the same
    conditions (λ = 1, ε = 0); NSHTP's refit breaks the one-step argument."""
    from solvers.newton_step import NSHTP, NSIHT
    from solvers.splicing import Splicing

    register_theorems(NSIHT, Theorem("Wu et al. 2024, Lemma 3 (NSIHT is Topk-I-OBS on least squares)",
                                     quadratic_rule(topk_iobs_lemma3), order=2))
    register_no_bound(NSHTP, "the RIP conditions of Meng & Zhao 2020 for NSHTP are not implemented")
    register_no_bound(Splicing, "abess's guarantees (Zhu et al. 2020) are support-recovery results in "
                                "probability, not a per-iteration contraction")


def _register_newton_pursuit() -> None:
    """NHTP and GPNP: their quadratic rates are asymptotic, so no per-step bound is drawn (the reasons say why)."""
    from solvers.newton_pursuit import GPNP, NHTP

    register_no_bound(NHTP, "the quadratic rate of Zhou, Xiu & Qi 2021 (e_{t+1} <= c e_t^2 under "
                            "restricted strong convexity/smoothness and a restricted-Lipschitz Hessian) holds only "
                            "from an unknown iteration on (once T_t = supp(x*) and the full Newton step passes the "
                            "descent and Armijo tests of Steps 3-4), and for eta, gamma below thresholds the "
                            "defaults do not check; it gives no bound on a step from e_t alone")
    register_no_bound(GPNP, "the quadratic rate of Zhou 2022 holds only once the support has settled and the Newton "
                            "step is accepted, from an iteration the restricted constants do not determine; it "
                            "gives no bound on a step from e_t alone")


_register_package_theorems()


# -------------------------------------------------------------------------------- theory as an observer
class BoundTracker:
    """A run callback that fills each row's ``bound`` / ``bound_note`` with `bound_for` (the bound on this
    row's error from the previous row's), outside the solver's clock.

    The runner attaches it (`experiments.execution.runner.execute`); a solver never calls the theory, and a bare
    ``solver.run(problem)`` — or a grid that keeps only final rows, such as a phase diagram — skips it (and
    the import of this module). Rows of a direct solver (one final row, no starting row) are left as they are.
    """

    def __init__(self, problem: Problem):
        self.problem = problem
        self.previous: float | None = None

    def start(self, solver: Any, state: Any, row: dict[str, Any]) -> None:
        self.previous = row["distance"]

    def __call__(self, solver: Any, state: Any, row: dict[str, Any]) -> None:
        if self.previous is None:
            return
        row["bound"], row["bound_note"] = bound_for(solver, self.problem, self.previous, row["iteration"])
        row["bound"] = float(row["bound"])
        self.previous = row["distance"]


def observed_run(solver: Any, problem: Problem, callbacks: tuple = ()) -> Any:
    """``solver.run(problem)`` with the theory observing it (`BoundTracker` first, then ``callbacks``)."""
    return solver.run(problem, callbacks=[BoundTracker(problem), *callbacks])
