"""Per-iteration error bounds of the theorems, and the wiring that picks the theorem of a solver.

Every bound function takes the previous error e_t = ‖x_t − x*‖₂ first and the constants of the instance as
keyword floats, and returns ``(bound on e_{t+1}, note)``. The note is ``""`` when the assumptions hold and
otherwise names the failing condition (``"assumption: delta_3k=0.71 >= 1/sqrt(3)=0.577"``); the bound is then
NaN. `bound_for` adds one more kind of note: ``"estimate: ..."`` when the assumptions hold only for sampled
constants that are not certified, in which case the value is computed from them and is not a guarantee.

All results are for noiseless instances (y = Ax*, x* the minimiser); with noise `bound_for` returns NaN.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

import numpy as np

from problems.base import Problem
from problems.conditioning import (EXACT, hessian_lipschitz_of, is_positive_definite, local_constants_of,
                                   quick_sparse_extremes_of, restricted_smoothness_of, rip_from_extremes,
                                   sparse_spectrum_of, spectral_constants, stationarity_of)

log = logging.getLogger(__name__)

NAN = float("nan")
Bound = tuple[float, str]

#: δ thresholds of the RIP theorems.
IHT_DELTA_MAX = 1.0 / math.sqrt(3.0)                         # F&R Thm 6.18 (IHT and HTP): δ_3s < 0.5773
COSAMP_DELTA_MAX = math.sqrt((math.sqrt(11.0 / 3.0) - 1) / 4)  # F&R Thm 6.28: δ_4s < 0.4782
SP_DELTA_MAX = math.sqrt(math.sqrt(5.0) - 2.0)                # Song, Xia & Liu 2014: δ_3s < 0.4859
#: ‖∇f(x*)‖/‖∇f(x0)‖ above which x* is not taken as the unconstrained minimiser (A1; noiseless setting).
STATIONARITY_TOL = 1e-8

#: solver name -> the theorem `bound_for` draws for it.
BOUND_NAMES = {
    "iobs_exact": "Wu et al. 2024, Theorem 1, corrected ratio (d-k)/(d-k*)",
    "topk_iobs": "Wu et al. 2024, Lemma 3",
    "iht": "Foucart & Rauhut 2013, Theorem 6.18 (IHT) for sqrt(step)*A",
    "htp": "Foucart & Rauhut 2013, Theorem 6.18 (HTP) for sqrt(step)*A",
    "cosamp": "Foucart & Rauhut 2013, Theorem 6.28, A optimally rescaled",
    "sp": "Song, Xia & Liu 2014 (arXiv:1309.6073), SP, A optimally rescaled",
}


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


def iobs_theorem1_stated(previous_error: float, *, mu: float, L: float, M: float, d: int, k: int,
                         k_star: int) -> Bound:
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
    return (1.0 + math.sqrt(L / mu * ratio)) * newton_factor(mu, M) * previous_error**2, ""


def iobs_theorem1_corrected(previous_error: float, *, mu: float, L: float, M: float, d: int, k: int,
                            k_star: int) -> Bound:
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
    return (1.0 + math.sqrt(L / mu * ratio)) * newton_factor(mu, M) * previous_error**2, ""


def topk_iobs_lemma3(previous_error: float, *, mu: float, M: float, k: int, k_star: int, d: int) -> Bound:
    """Topk-I-OBS x_{t+1} = T_k(x_t − H_t⁻¹∇f(x_t)), Lemma 3 of Wu et al. (2024):

        e_{t+1} ≤ (1 + sqrt(k*/k)) · (M/(2μ)) · e_t²,

    under A1, A2, A4 and k* ≤ k (Lemma 8 applied on supp(x_{t+1}) ∪ supp(x*), then the Newton bound).
    """
    note = quadratic_rate_assumptions(mu=mu, M=M, k=k, k_star=k_star, d=d)
    if note:
        return failed(note)
    return (1.0 + math.sqrt(k_star / k)) * newton_factor(mu, M) * previous_error**2, ""


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
    """Subspace pursuit (Dai & Milenkovic 2009), rate of Song, Xia & Liu (2014, arXiv:1309.6073, Thm 1):
    ρ = sqrt(2δ_3s²(1 + δ_3s²)) / (1 − δ_3s²), < 1 exactly when δ_3s < sqrt(√5 − 2) ≈ 0.4859.

    Uncertain: the constant is reconstructed to match the paper's stated threshold 0.4859 exactly and is
    checked numerically in tests/test_bounds.py, not against the printed theorem."""
    if not delta_3k < SP_DELTA_MAX:
        return failed(f"delta_3k={delta_3k:.3g} >= {SP_DELTA_MAX:.4f}")
    return math.sqrt(2.0 * delta_3k**2 * (1.0 + delta_3k**2)) / (1.0 - delta_3k**2), ""


def iht_restricted_eigenvalue_rate(*, alpha: float, beta: float, step: float, k: int, k_star: int) -> Bound:
    """IHT with any fixed step η under restricted strong convexity α and smoothness β at sparsity 2k + k*
    (quadratic f, or α ≤ λ(∇²f) ≤ β on (2k+k*)-sparse supports along the segment x_t → x*):

        e_{t+1} ≤ ρ e_t,  ρ = (1 + sqrt(k*/k)) · max(|1 − ηα|, |1 − ηβ|);  with η = 1/β: ρ = (1+sqrt(k*/k))(1 − 1/κ).

    Derivation (ours): u = x_t − η∇f(x_t), V = supp(x_{t+1}) ∪ supp(x*); Lemma 8 of Wu et al. (Peste et al.
    2021, Lemma 1) on u_V gives ‖T_k(u) − x*‖ ≤ (1 + sqrt(k*/k))‖(u − x*)_V‖, and u − x* = (I − ηH̄)(x_t − x*)
    restricted to V ∪ supp(x_t) (≤ 2k + k* indices). With k = k*, η = 1 it is the classical 2δ_3s
    contraction. This is the step-size-aware RSC/RSS form; it is not the Jain, Tewari & Kar (2014) Theorem 1,
    whose rate is on f − f* and needs k ≥ 32κ²k* with η = 2/(3L). Valid for any ρ (contracting iff ρ < 1).
    """
    if not k_star <= k:
        return failed(f"k={k} < k_star={k_star}")
    if not (0 <= alpha <= beta and step > 0):
        return failed(f"restricted eigenvalues 0 <= alpha={alpha:.3g} <= beta={beta:.3g} and step > 0 fail")
    contraction = max(abs(1.0 - step * alpha), abs(1.0 - step * beta))
    return (1.0 + math.sqrt(k_star / k)) * contraction, ""


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
#: Why a registered solver has no bound (others get the generic note).
NO_BOUND_REASONS = {
    "niht": "adaptive step size (the Blumensath & Davies 2010 guarantee is not implemented)",
    "omp": "no per-iteration contraction (OMP guarantees are exact recovery after k steps)",
    "iobs_obs": "Theorem 1 needs the optimal support, not the greedy OBS one",
}


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


def quadratic_rule(theorem: Callable[..., Bound]) -> Callable[[Any, Problem, float], Bound]:
    """Wire Theorem 1 / Lemma 3: certified μ (lower), M (upper) and, when M > 0, restricted L (upper)."""
    def rule(solver: Any, problem: Problem, previous_error: float) -> Bound:
        note = full_newton_note(solver)
        if note:
            return failed(note)
        k = budget(solver, problem)
        if problem.hessian_is_constant:  # M = 0: one exact step, the bound is 0 whenever μ > 0
            note = quadratic_rate_assumptions(mu=1.0 if is_positive_definite(problem) else 0.0, M=0.0, k=k,
                                              k_star=problem.k_star, d=problem.d)
            return failed(note) if note else (0.0, "")
        constants = quadratic_constants(problem, k, previous_error)
        mu, mu_note = certified_value(constants, "mu", "lower")
        M, M_note = certified_value(constants, "M", "upper")
        values = dict(mu=mu, M=M, k=k, k_star=problem.k_star, d=problem.d)
        L_note = ""
        if theorem is not topk_iobs_lemma3:
            if M == 0:  # the bound is 0 whatever L is: skip computing it
                values["L"] = 0.0
            else:
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


def certify(previous_error: float, rate: Callable[..., Bound], certified: dict[str, float],
            sampled: dict[str, float], exact: bool) -> Bound:
    """Bound from certified δ's when they satisfy the theorem; NaN when the (exact or sampled lower-bound) δ's
    violate it; otherwise the value from the sampled δ's with an ``estimate:`` note."""
    value, note = linear_bound(previous_error, rate(**certified))
    if not note or exact:
        return value, note
    value, sampled_note = linear_bound(previous_error, rate(**sampled))
    if sampled_note:
        return NAN, f"{sampled_note} (sampled lower bound)"
    return value, f"estimate: sampled {', '.join(sampled)} satisfy the theorem, the certified upper bounds do not"


def rip_rule(rate: Callable[..., Bound], multiples: dict[str, int],
             step_rule: Callable[[Any, Problem], float | None]) -> Callable[[Any, Problem, float], Bound]:
    """Wire a RIP theorem: δ's at sparsity multiple·k of √η·A (``step_rule`` gives η, None = best rescaling).

    A few random supports (`quick_sparse_extremes_of`, no d×d work) are tried first: when they already violate
    the hypothesis the answer is NaN without the full search; otherwise exact / sampled + certified δ's.
    """
    def rule(solver: Any, problem: Problem, previous_error: float) -> Bound:
        if "least_squares" not in problem.capabilities:
            return failed("a least-squares problem (the theorem is stated under the RIP of A)")
        k = budget(solver, problem)
        if k < problem.k_star:
            return failed(f"k={k} < k_star={problem.k_star}")
        step = step_rule(solver, problem)
        matrix = "best rescaling of A" if step is None else f"sqrt(step)*A, step={step:.4g}"
        quick = {name: scaled_delta(*quick_sparse_extremes_of(problem, multiple * k), step)
                 for name, multiple in multiples.items()}
        quick_note = rate(**quick)[1]
        if quick_note:  # a few random supports already violate the assumption: no need for the full search
            return NAN, f"{quick_note} (sampled lower bound) [{matrix}]"
        certified, sampled, exact = {}, {}, True
        for name, multiple in multiples.items():
            spectrum = sparse_spectrum_of(problem, multiple * k)
            certified[name] = scaled_delta(spectrum.lambda_min_lower, spectrum.lambda_max_upper, step)
            sampled[name] = scaled_delta(spectrum.lambda_min, spectrum.lambda_max, step)
            exact = exact and spectrum.exact
        value, note = certify(previous_error, rate, certified, sampled, exact)
        return value, (f"{note} [{matrix}]" if note else "")
    return rule


RULES: dict[str, Callable[[Any, Problem, float], Bound]] = {
    "iobs_exact": quadratic_rule(iobs_theorem1_corrected),
    "topk_iobs": quadratic_rule(topk_iobs_lemma3),
    "iht": rip_rule(iht_rip_rate, {"delta_3k": 3}, step_size_of),
    "htp": rip_rule(htp_rip_rate, {"delta_2k": 2, "delta_3k": 3}, step_size_of),
    "cosamp": rip_rule(cosamp_rip_rate, {"delta_4k": 4}, lambda s, p: None),
    "sp": rip_rule(sp_rip_rate, {"delta_3k": 3}, lambda s, p: None),
}


def bound_for(solver: Any, problem: Problem, previous_error: float) -> Bound:
    """The bound on ‖x_{t+1} − x*‖ given ‖x_t − x*‖ for ``solver`` on ``problem`` (theorem: `BOUND_NAMES`).

    Constants come from the per-instance cache of `problems.conditioning`, so only the first call of a run
    computes anything. Returns NaN and ``"no bound for solver X"`` when no theorem applies, NaN and
    ``"assumption: ..."`` when one fails, and never raises (a failure becomes a ``"bound failed: ..."`` note).
    """
    name = getattr(solver, "name", type(solver).__name__)
    rule = RULES.get(name)
    if rule is None:
        reason = NO_BOUND_REASONS.get(name)
        return NAN, f"no bound for solver {name}" + (f": {reason}" if reason else "")
    noise_std = float(getattr(problem, "noise_std", 0.0) or 0.0)
    if noise_std > 0:
        return failed(f"noiseless instance (noise_std={noise_std:.3g} > 0)")
    if not np.isfinite(previous_error):
        return NAN, "previous error is not finite"
    try:
        gradient_at_star = stationarity_of(problem)
        if gradient_at_star > STATIONARITY_TOL:
            return failed(f"x* is the unconstrained minimiser (A1; relative gradient at x* {gradient_at_star:.2g})")
        return rule(solver, problem, float(previous_error))
    except Exception as exc:  # a bound must never break a run
        log.warning("bound for %s failed: %s", name, exc)
        return NAN, f"bound failed: {type(exc).__name__}: {exc}"
