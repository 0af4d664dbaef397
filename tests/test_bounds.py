"""Theory tests: where a theorem's assumptions hold, the measured one-step error never exceeds its bound;
where they fail, the note says which. Reference steps are implemented here, independent of `solvers/`."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

from problems import LeastSquaresProblem, Problem, make_compressed_sensing, make_least_squares
from problems import conditioning
from problems.conditioning import local_constants_of
from problems.sparse_spectra import rip_from_extremes, sparse_spectrum
from problems.nonquadratic import make_logistic_regression, make_quartic_sensing
from problems.regression import orthonormal_columns
from solvers import REGISTRY, make_solver
from solvers import bounds
from solvers.bounds import (bound_for, cosamp_rip_rate, envelope, htp_rip_rate, iht_rsc_rss_rate,
                            iht_rip_rate, iobs_theorem1_corrected, iobs_theorem1_stated, linear_bound, observed_run,
                            scaled_delta, sp_rip_rate, topk_iobs_lemma3)


def slack(problem) -> float:
    """Rounding allowance of one step (absolute)."""
    return 1e-11 * (1.0 + float(np.linalg.norm(problem.x_star)))


def top_k(v: np.ndarray, k: int) -> np.ndarray:
    return np.sort(np.argsort(-np.abs(v), kind="stable")[:k])


def threshold(v: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros_like(v)
    keep = top_k(v, k)
    out[keep] = v[keep]
    return out


def ls_on(A: np.ndarray, y: np.ndarray, support: np.ndarray) -> np.ndarray:
    x = np.zeros(A.shape[1])
    x[support] = np.linalg.lstsq(A[:, support], y, rcond=None)[0]
    return x


# --------------------------------------------------------------------------- reference Newton-type steps
def newton_point(problem, x):
    H = problem.hessian(x)
    Hinv = np.linalg.inv(H)
    return x - Hinv @ problem.gradient(x), Hinv


def exact_iobs_step(problem, x, k):
    """Algorithm 1, Option 2: S = argmin_{|S|=d−k} θ⁺_Sᵀ[(H⁻¹)_SS]⁻¹θ⁺_S, θ = θ⁺ − H⁻¹ I_Sᵀ[(H⁻¹)_SS]⁻¹θ⁺_S."""
    theta, Hinv = newton_point(problem, x)
    d = x.size
    if k == d:
        return theta
    subsets = np.array(list(itertools.combinations(range(d), d - k)))
    blocks, rhs = Hinv[subsets[:, :, None], subsets[:, None, :]], theta[subsets]
    multipliers = np.linalg.solve(blocks, rhs[..., None])[..., 0]
    best = int(np.argmin(np.einsum("bs,bs->b", rhs, multipliers)))
    return theta - Hinv[:, subsets[best]] @ multipliers[best]


def topk_iobs_step(problem, x, k):
    return threshold(newton_point(problem, x)[0], k)


def quartic_instance(seed: int):
    """A random small f = ½‖Ax − y‖² + Σ φ(x_i − x*_i) with convex φ, started near x*, and a budget k."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(3, 8))
    k_star = int(rng.integers(1, d))
    k = int(rng.integers(k_star, d + 1))
    ridge, quartic = rng.uniform(0.05, 1.0), rng.uniform(0.5, 5.0)
    cubic = 0.95 * rng.uniform(-1, 1) * math.sqrt(3 * ridge * quartic)
    problem = make_quartic_sensing(m=d + int(rng.integers(0, 5)), d=d, k_star=k_star, ridge=ridge, cubic=cubic,
                                   quartic=quartic, init_radius=10 ** rng.uniform(-2.5, -0.3), seed=seed)
    return problem, k


def ball_constants(problem, k, r):
    """μ, restricted L, M of the quartic instance on ‖x − x*‖_∞ ≤ r, derived here by brute force:
    ∇²f = AᵀA + diag φ''(x − x*), φ'' = ridge + 2c·t + 3q·t², |φ''(t) − φ''(t')| ≤ |t − t'|(2|c| + 6qr)."""
    c, q, ridge = problem.cubic, problem.quartic, problem.ridge
    t = np.linspace(-r, r, 2001)
    phi2 = ridge + 2 * c * t + 3 * q * t * t
    gram, d = problem.A.T @ problem.A, problem.d
    mu = np.linalg.eigvalsh(gram)[0] + phi2.min() - 1e-12
    subsets = map(list, itertools.combinations(range(d), d - k))  # A3 is vacuous at k = d: L = 0
    L = max(np.linalg.eigvalsh(gram[np.ix_(S, S)])[-1] for S in subsets) + phi2.max() if k < d else 0.0
    return dict(mu=mu, L=L, M=2 * abs(c) + 6 * q * r)


def test_theorem1_and_lemma3_hold_on_200_random_instances():
    checks = contracting = 0
    worst = 0.0
    for seed in range(200):
        problem, k = quartic_instance(seed)
        common = dict(d=problem.d, k=k, k_star=problem.k_star)
        for step, theorems in ((exact_iobs_step, (iobs_theorem1_stated, iobs_theorem1_corrected)),
                               (topk_iobs_step, (topk_iobs_lemma3,))):
            x = np.array(problem.x0)
            for _ in range(4):
                e = float(np.linalg.norm(x - problem.x_star))
                if e < 1e-9:
                    break
                constants = ball_constants(problem, k, e)  # ‖x − x*‖_∞ ≤ e: the segment to x* stays in the ball
                x = step(problem, x, k)
                e_next = float(np.linalg.norm(x - problem.x_star))
                for theorem in theorems:
                    values = constants if theorem is not topk_iobs_lemma3 else {
                        n: v for n, v in constants.items() if n != "L"}
                    bound, note = theorem(e, **values, **common)
                    if theorem is iobs_theorem1_stated and k == problem.d:
                        assert np.isnan(bound) and "k = d" in note
                        continue
                    assert note == "", note
                    assert e_next <= bound + slack(problem), (seed, theorem.__name__, e, e_next, bound)
                    checks += 1
                    contracting += bound < e
                    worst = max(worst, e_next / bound if bound > 1e-8 else 0.0)
    assert checks >= 1000
    assert contracting >= checks // 3  # the bounds are not vacuous: many predict a decrease
    assert worst > 1e-3


def test_library_local_constants_are_at_least_as_conservative_as_the_brute_force_ones():
    for seed in range(30):
        problem, k = quartic_instance(seed)
        local = local_constants_of(problem, k, 0.1)
        brute = ball_constants(problem, k, local["M_upper"]["radius"])
        assert local["mu_lower"]["value"] <= brute["mu"] + 1e-9
        assert local["M_upper"]["value"] >= brute["M"] - 1e-12
        assert local["L_restricted_upper"]["value"] >= brute["L"] - 1e-9


def test_stated_theorem1_is_never_tighter_than_the_corrected_one():
    for d, k, k_star in [(10, 3, 3), (10, 5, 2), (10, 9, 1), (6, 6, 6)]:
        values = dict(mu=0.5, L=3.0, M=2.0, d=d, k=k, k_star=k_star)
        corrected, _ = iobs_theorem1_corrected(0.1, **values)
        stated, note = iobs_theorem1_stated(0.1, **values)
        assert math.isfinite(corrected)
        assert (np.isnan(stated) and "k = d" in note) if k == d else stated >= corrected


@pytest.mark.skipif(not {"iobs_exact", "topk_iobs"} <= REGISTRY.keys(), reason="I-OBS solvers not registered")
def test_registered_iobs_solvers_stay_below_the_bound_they_draw():
    drawn = 0
    for seed in range(25):
        problem, k = quartic_instance(seed)
        for name in ("iobs_exact", "topk_iobs"):
            frame = observed_run(make_solver(name, k=k, max_iter=5), problem).frame()
            rows = frame[(frame["iteration"] > 0) & (frame["bound_note"] == "")]
            assert (rows["distance"] <= rows["bound"] + slack(problem)).all(), (seed, name)
            drawn += len(rows)
    assert drawn >= 50


# ------------------------------------------------------------------------------------ RIP linear rates
def near_isometry(seed: int, eps: float):
    """y = Ax*, AᵀA = V diag(λ) Vᵀ with λ ∈ [1 − eps, 1 + eps], so δ_s(A) ≤ eps for every s; x* has entries
    of magnitudes 10^U(−2, 0), so the small ones are not found at once and the rate bounds are exercised."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(8, 13))
    k_star = int(rng.integers(2, 4))
    spectrum = np.sqrt(rng.uniform(1 - eps, 1 + eps, d))
    A = (orthonormal_columns(d + 4, d, rng) * spectrum) @ orthonormal_columns(d, d, rng).T
    x_star = np.zeros(d)
    x_star[rng.choice(d, k_star, replace=False)] = rng.choice([-1.0, 1.0], k_star) * 10 ** rng.uniform(-2, 0, k_star)
    problem = LeastSquaresProblem(name="near_isometry", params={}, seed=seed, x_star=x_star, k_star=k_star,
                                  A=A, y=A @ x_star)
    return problem, k_star + int(rng.integers(0, 2)), rng


def reference_step(name, A, y, x, k, eta):
    if name == "iht":
        return threshold(x + eta * A.T @ (y - A @ x), k)
    if name == "htp":
        return ls_on(A, y, top_k(x + eta * A.T @ (y - A @ x), k))
    proxy = top_k(A.T @ (y - A @ x), 2 * k if name == "cosamp" else k)
    b = ls_on(A, y, np.union1d(np.flatnonzero(x), proxy))
    return threshold(b, k) if name == "cosamp" else ls_on(A, y, top_k(b, k))


def rip_rate(name, A, k, eta):
    """(ρ, note) from the exact δ's of √η·A (IHT, HTP) or of the best rescaling of A (CoSaMP, SP)."""
    G = A.T @ A
    delta = {s: scaled_delta(*(lambda sp: (sp.lambda_min, sp.lambda_max))(sparse_spectrum(G, s * k)),
                             eta if name in ("iht", "htp") else None) for s in (2, 3, 4)}
    if name == "iht":
        return iht_rip_rate(delta_3k=delta[3])
    if name == "htp":
        return htp_rip_rate(delta_2k=delta[2], delta_3k=delta[3])
    return cosamp_rip_rate(delta_4k=delta[4]) if name == "cosamp" else sp_rip_rate(delta_3k=delta[3])


@pytest.mark.parametrize("name", ["iht", "htp", "cosamp", "sp"])
def test_rip_rates_hold_on_random_near_isometries(name):
    checks, worst = 0, 0.0
    for seed in range(150):
        problem, k, rng = near_isometry(seed, eps=float(np.random.default_rng(10_000 + seed).uniform(0.1, 0.5)))
        A, y = problem.A, problem.y
        for eta in (1.0, 1.0 / np.linalg.eigvalsh(A.T @ A)[-1]) if name in ("iht", "htp") else (1.0,):
            rho, note = rip_rate(name, A, k, eta)
            if note:
                continue
            x = ls_on(A, y, np.sort(rng.choice(problem.d, k, replace=False)))  # a valid iterate of every method
            for _ in range(6):
                e = float(np.linalg.norm(x - problem.x_star))
                x = reference_step(name, A, y, x, k, eta)
                e_next = float(np.linalg.norm(x - problem.x_star))
                assert e_next <= rho * e + slack(problem), (seed, eta, rho)
                checks += 1
                worst = max(worst, e_next / (rho * e) if e > 1e-8 else 0.0)
    assert checks >= 300
    assert worst > 0.2  # some steps come within a factor 5 of the bound


def test_rsc_rss_rate_of_iht_holds_for_any_step_and_budget():
    checks = 0
    for seed in range(120):
        rng = np.random.default_rng(seed)
        problem = make_least_squares(n=14, d=9, k_star=int(rng.integers(1, 3)), kappa=rng.uniform(1.2, 4), seed=seed)
        k = problem.k_star + int(rng.integers(0, 4))
        spectrum = sparse_spectrum(problem.gram, 2 * k + problem.k_star)
        eta = rng.uniform(0.5, 1.5) / spectrum.lambda_max
        delta = rip_from_extremes(spectrum.lambda_min, spectrum.lambda_max, eta)
        rho, note = iht_rsc_rss_rate(delta_2k_plus_k_star=delta, k=k, k_star=problem.k_star)
        if note:
            assert np.isnan(rho) and "needs k > (kappa-1)^2 k*" in note
            continue
        x = threshold(rng.standard_normal(9), k)
        for _ in range(5):
            e = float(np.linalg.norm(x - problem.x_star))
            x = threshold(x - eta * problem.gradient(x), k)
            assert np.linalg.norm(x - problem.x_star) <= rho * e + slack(problem)
            checks += 1
    assert checks >= 200


def test_iht_gets_the_rsc_rss_bound_where_the_rip_theorem_fails():
    """An ill-conditioned regression with a large budget: δ_3k of √η·A is past 1/√3, but k ≥ (κ−1)²k*, so the
    RSC/RSS rate certifies linear convergence; the registered IHT stays below the bound it draws."""
    problem = make_least_squares(n=30, d=10, k_star=1, kappa=2.6, seed=3)
    solver = make_solver("iht", k=6, max_iter=30)
    rows = {name: (value, note) for name, value, note in bounds.theorem_bounds(solver, problem, 1.0)}
    assert len(rows) == 3  # F&R 6.18, the RSC/RSS rate, the noisy-IHT bound (2·δ_3k: fails here too)
    (rip_value, rip_note), (rsc_value, rsc_note), (noisy_value, noisy_note) = rows.values()
    assert np.isnan(rip_value) and rip_note.startswith("assumption: delta_3k=")
    assert np.isnan(noisy_value) and noisy_note.startswith("assumption: delta_3k=")
    assert rsc_note == "" and 0 < rsc_value < 1
    assert bound_for(solver, problem, 1.0) == (rsc_value, "")
    frame = observed_run(solver, problem).frame()
    drawn = frame[(frame["iteration"] > 0) & (frame["bound_note"] == "")]
    assert len(drawn) >= 5 and (drawn["distance"] <= drawn["bound"] + slack(problem)).all()


# ---------------------------------------------------------------------------------- notes and wiring
def test_failing_assumptions_are_named():
    quad = dict(mu=1.0, L=2.0, M=1.0, d=10, k=4, k_star=2)
    assert "mu=-0.1 <= 0" in iobs_theorem1_corrected(0.1, **(quad | {"mu": -0.1}))[1]
    assert "k_star=5 <= k=4" in iobs_theorem1_stated(0.1, **(quad | {"k_star": 5}))[1]
    assert "M=inf" in topk_iobs_lemma3(0.1, mu=1.0, M=np.inf, d=10, k=4, k_star=2)[1]
    value, note = iht_rip_rate(delta_3k=0.71)
    assert np.isnan(value) and note == "assumption: delta_3k=0.71 >= 1/sqrt(3)=0.5774"
    assert np.isnan(htp_rip_rate(delta_2k=0.5, delta_3k=0.6)[0])
    assert np.isnan(cosamp_rip_rate(delta_4k=0.48)[0]) and cosamp_rip_rate(delta_4k=0.478)[0] < 1
    assert np.isnan(sp_rip_rate(delta_3k=0.486)[0]) and sp_rip_rate(delta_3k=0.485)[0] < 1
    assert "k=1 < k_star=2" in iht_rsc_rss_rate(delta_2k_plus_k_star=0.1, k=1, k_star=2)[1]
    assert "needs k > (kappa-1)^2 k*" in iht_rsc_rss_rate(delta_2k_plus_k_star=0.6, k=2, k_star=2)[1]
    assert linear_bound(2.0, (0.5, "")) == (1.0, "")


def test_rate_constants_meet_one_exactly_at_the_thresholds():
    assert iht_rip_rate(delta_3k=bounds.IHT_DELTA_MAX - 1e-12)[0] == pytest.approx(1.0)
    edge = bounds.IHT_DELTA_MAX - 1e-12
    assert htp_rip_rate(delta_2k=edge, delta_3k=edge)[0] == pytest.approx(1.0)
    assert cosamp_rip_rate(delta_4k=bounds.COSAMP_DELTA_MAX - 1e-12)[0] == pytest.approx(1.0)
    assert sp_rip_rate(delta_3k=bounds.SP_DELTA_MAX - 1e-12)[0] == pytest.approx(1.0)


def test_bound_for_says_why_not():
    cs = make_compressed_sensing(m=30, d=60, k_star=3, seed=0)
    value, note = bound_for(make_solver("iht", k=3), cs, 1.0)
    assert np.isnan(value) and note.startswith("assumption: delta_3k=") and "sampled lower bound" in note
    noisy = make_compressed_sensing(m=30, d=60, k_star=3, noise_std=0.1, seed=0)
    assert "noiseless" in bound_for(make_solver("cosamp", k=3), noisy, 1.0)[1]
    assert bound_for(make_solver("omp", k=3), cs, 1.0)[1].startswith("no bound for solver omp")

    class Unknown:
        name = "my_method"
    assert bound_for(Unknown(), cs, 1.0) == (pytest.approx(np.nan, nan_ok=True), "no bound for solver my_method")
    quartic = make_quartic_sensing(m=10, d=6, k_star=2, seed=0)
    if "topk_iobs" in REGISTRY:
        damped = make_solver("topk_iobs", k=2, newton_step=0.5)
        assert "full Newton step (newton_step=0.5" in bound_for(damped, quartic, 0.1)[1]
        ridge = make_logistic_regression(n=40, d=6, k_star=2, l2=0.1, seed=0)
        assert "A1" in bound_for(make_solver("topk_iobs", k=2), ridge, 0.1)[1]
    assert "least-squares" in bound_for(make_solver("iht", k=2), quartic, 0.1)[1]


@pytest.mark.parametrize("name, params", [("iht", {"step_size": 1.0}), ("iht", {}), ("htp", {}), ("cosamp", {}),
                                          ("sp", {})])
def test_registered_rip_solvers_stay_below_the_bound_they_draw(name, params):
    if name not in REGISTRY:
        pytest.skip(f"{name} not registered")
    drawn = 0
    for seed in range(15):
        problem, k, _ = near_isometry(seed, eps=0.25)
        frame = observed_run(make_solver(name, k=k, max_iter=8, **params), problem).frame()
        rows = frame[(frame["iteration"] > 0) & (frame["bound_note"] == "")]
        assert (rows["distance"] <= rows["bound"] + slack(problem)).all(), seed
        drawn += len(rows)
    assert drawn >= 15


def test_iht_bound_uses_the_actual_step():
    problem, k, _ = near_isometry(3, eps=0.2)
    spectrum = conditioning.sparse_spectrum_of(problem, 3 * k)
    for params, eta in (({"step_size": 1.0}, 1.0), ({"step_scale": 0.5}, 0.5 / problem.smoothness())):
        solver = make_solver("iht", k=k, **params)
        delta = rip_from_extremes(spectrum.lambda_min, spectrum.lambda_max, eta)
        expected_value, expected_note = linear_bound(2.0, iht_rip_rate(delta_3k=delta))
        value, note = bound_for(solver, problem, 2.0)
        assert value == pytest.approx(expected_value, nan_ok=True)
        assert note == expected_note == "" or (note.startswith("assumption: delta_3k=") and f"step={eta:.4g}" in note)


@pytest.mark.parametrize("name", ["iht", "cosamp"])
def test_constants_are_computed_once_per_problem(monkeypatch, name):
    computed = []
    original = conditioning.cached

    def counting(problem, key, compute):
        return original(problem, key, lambda: computed.append(key) or compute())
    monkeypatch.setattr(conditioning, "cached", counting)
    for problem, k in ((make_compressed_sensing(m=40, d=50, k_star=2, seed=4), 2), near_isometry(1, 0.2)[:2]):
        computed.clear()
        result = observed_run(make_solver(name, k=k, max_iter=1000, tol=1e-300), problem)
        assert result.n_iter >= 2 and result.frame()["bound_note"].iloc[1:].nunique() == 1
        # each constant once, however many iterations (7 kinds for IHT: its three theorems need the spectra at
        # 2k and 3k, their quick checks, the spectral and stationarity constants and the noise norm)
        assert len(computed) == len(set(computed)) <= 7, computed


def test_envelope_iterates_a_one_step_bound():
    curve = envelope(2.0, lambda e: linear_bound(e, (0.5, "")), 4)
    np.testing.assert_allclose(curve, [2.0, 1.0, 0.5, 0.25, 0.125])
    lemma3 = functools.partial(topk_iobs_lemma3, mu=1.0, M=1.0, d=10, k=4, k_star=1)
    c = 1.5 * 0.5
    np.testing.assert_allclose(envelope(0.1, lemma3, 2), [0.1, c * 0.01, c * (c * 0.01) ** 2])
    failing = envelope(1.0, lambda e: iht_rip_rate(delta_3k=0.9), 3)
    assert failing[0] == 1.0 and np.isnan(failing[1:]).all()


@pytest.mark.skipif("topk_iobs" not in REGISTRY, reason="Topk-I-OBS not registered")
def test_topk_iobs_on_logistic_regression_stays_below_its_certified_bound():
    drawn = 0
    for seed in range(4):
        problem = make_logistic_regression(n=80, d=7, k_star=2, init_radius=0.3, seed=seed)
        frame = observed_run(make_solver("topk_iobs", k=3, max_iter=5), problem).frame()
        rows = frame[(frame["iteration"] > 0) & (frame["bound_note"] == "")]
        assert (rows["distance"] <= rows["bound"] + slack(problem)).all()
        drawn += int((rows["bound"] > 0).sum())
    assert drawn >= 8


def test_uncertified_constants_give_an_estimate_note():
    def evaluate(deltas):
        return linear_bound(1.0, iht_rip_rate(**deltas))
    value, note = bounds.certify(evaluate, {"delta_3k": 0.7}, {"delta_3k": 0.3}, exact=False)
    assert value == pytest.approx(math.sqrt(3) * 0.3) and note.startswith("estimate: sampled delta_3k")
    value, note = bounds.certify(evaluate, {"delta_3k": 0.9}, {"delta_3k": 0.8}, exact=False)
    assert np.isnan(value) and note.endswith("(sampled lower bound)")


@pytest.mark.skipif("topk_iobs" not in REGISTRY, reason="Topk-I-OBS not registered")
def test_problems_without_certified_constants_get_estimates():
    class SeparableQuartic(Problem):
        """f(x) = ½‖x − x*‖² + ¼Σ(x_i − x*_i)⁴: no certified constants are known to the library."""
        def objective(self, x):
            t = x - self.x_star
            return 0.5 * t @ t + 0.25 * np.sum(t**4)

        def gradient(self, x):
            t = x - self.x_star
            return t + t**3

        def hessian(self, x):
            return np.eye(self.d) + np.diag(3 * (x - self.x_star) ** 2)

    problem = SeparableQuartic(name="separable", params={}, seed=0, x_star=np.array([1.0, 0, 0, 0]), k_star=1)
    value, note = bound_for(make_solver("topk_iobs", k=2), problem, 0.1)
    assert np.isfinite(value) and note.startswith("estimate: not certified (mu: estimate; M: sampled lower bound")


def test_the_reported_rsc_budget_is_where_the_rsc_rate_starts_to_hold():
    """budget_rsc_rate = (κ − 1)²k* (κ at sparsity 2k + k*, here the whole d): at step 1/λ_max the RSC/RSS
    theorem holds exactly when k exceeds it; budget_jtk2014 = 32κ²k* is reported beside it."""
    for kappa, k, holds in ((3.2, 5, True), (3.3, 5, False), (3.3, 6, True)):
        problem = make_least_squares(n=30, d=10, k_star=1, kappa=kappa, seed=0)
        constants = conditioning.instance_constants(problem, k=k)
        assert constants["budget_rsc_rate"]["value"] == pytest.approx((kappa - 1) ** 2)
        assert constants["budget_jtk2014"]["value"] == pytest.approx(32 * kappa**2)
        assert constants["budget_rsc_rate"]["how"] == "exact"
        solver = make_solver("iht", k=k)
        rsc = bounds.theorem_bounds(solver, problem, 1.0)[1]
        assert (rsc[2] == "") == holds == (k > constants["budget_rsc_rate"]["value"]), rsc


def test_the_first_step_is_bounded_only_from_a_start_the_theorem_covers():
    """The RIP / RSC analyses start from a k-sparse x_t (SP: the least-squares fit on its support); from another
    x_0 the first step gets a note, the later steps (whose iterates have that form) get the bound."""
    import dataclasses

    problem, k, _ = near_isometry(2, eps=0.2)
    dense = dataclasses.replace(problem, x0=np.full(problem.d, 0.1))
    sparse = np.zeros(problem.d)
    sparse[:k] = 1.0
    unfitted = dataclasses.replace(problem, x0=sparse)
    for name in ("iht", "htp", "cosamp", "sp"):
        solver = make_solver(name, k=k)
        value, note = bound_for(solver, dense, 1.0, iteration=1)
        assert np.isnan(value) and note.startswith("assumption: x_0 is k-sparse"), (name, note)
        assert bound_for(solver, dense, 1.0, iteration=2) == bound_for(solver, problem, 1.0)
        fitted_note = bound_for(solver, unfitted, 1.0)[1]
        assert ("least-squares fit" in fitted_note) == (name == "sp"), (name, fitted_note)
    frame = observed_run(make_solver("sp", k=k, max_iter=6), unfitted).frame()
    assert "least-squares fit" in frame.loc[1, "bound_note"]
    later = frame[frame["iteration"] > 1]
    assert len(later) and (later["bound_note"] == "").all()


def test_noisy_iht_bound_holds_on_random_noisy_near_isometries():
    """e_{t+1} ≤ 2δ_3k·e_t + 2·sqrt(1 + δ_2k)·‖√η·e‖ for IHT on y = Ax* + e, exact δ's of √η·A."""
    checks, tight = 0, 0
    for seed in range(100):
        clean, k, rng = near_isometry(seed, eps=float(np.random.default_rng(20_000 + seed).uniform(0.05, 0.4)))
        A, x_star = clean.A, clean.x_star
        e = rng.standard_normal(A.shape[0]) * 10 ** rng.uniform(-4, -1)
        y = A @ x_star + e
        G = A.T @ A
        for eta in (1.0, 1.0 / np.linalg.eigvalsh(G)[-1]):
            delta = {f"delta_{s}k": scaled_delta(sparse_spectrum(G, s * k).lambda_min,
                                                  sparse_spectrum(G, s * k).lambda_max, eta) for s in (2, 3)}
            rho, tau, note = bounds.iht_noisy_rate(**delta)
            if note:
                continue
            x = threshold(rng.standard_normal(A.shape[1]), k)
            for _ in range(8):
                error = float(np.linalg.norm(x - x_star))
                x = threshold(x + eta * A.T @ (y - A @ x), k)
                bound = rho * error + tau * math.sqrt(eta) * float(np.linalg.norm(e))
                assert np.linalg.norm(x - x_star) <= bound + 1e-12, (seed, eta)
                checks += 1
                tight += np.linalg.norm(x - x_star) > 0.2 * bound
    assert checks >= 500 and tight > 0


def test_registered_iht_on_a_noisy_instance_draws_the_noisy_bound_and_stays_below_it():
    import dataclasses

    drawn = 0
    for seed in range(6):
        clean, k, rng = near_isometry(seed, eps=0.2)
        e = 1e-3 * rng.standard_normal(clean.A.shape[0])
        noisy = dataclasses.replace(clean, y=clean.y + e, noise_std=1e-3)
        names = [name for name, _, note in bounds.theorem_bounds(make_solver("iht", k=k), noisy, 1.0) if not note]
        assert names and all(name.startswith("IHT with measurement noise") for name in names)
        frame = observed_run(make_solver("iht", k=k, max_iter=40), noisy).frame()
        rows = frame[(frame["iteration"] > 0) & (frame["bound_note"] == "")]
        assert (rows["distance"] <= rows["bound"] + 1e-12).all()
        drawn += len(rows)
    assert drawn >= 30


# ------------------------------------------------------------------------------ theory as an observer
def test_a_bare_solver_run_does_not_import_the_theory():
    """Solvers never call the theorems: only an observer attached by the runner does (`BoundTracker`)."""
    import subprocess
    import sys

    code = ("import sys; from problems import make_compressed_sensing; from solvers import make_solver; "
            "r = make_solver('iht').run(make_compressed_sensing(m=40, d=64, k_star=3, seed=0)); "
            "import math; assert all(math.isnan(row['bound']) and row['bound_note'] == '' for row in r.trace); "
            "assert 'solvers.bounds' not in sys.modules, 'solvers.bounds was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_user_solver_registers_its_own_theorem_from_its_own_module():
    from solvers.base import IterativeSolver, State
    from solvers._kernels import hard_threshold

    class UserIHT(IterativeSolver):
        name = "user_iht_for_theory_test"

        def step(self, problem, state):
            return State(x=hard_threshold(state.x - 0.5 * problem.gradient(state.x), self.k_), step_size=0.5)

    problem = make_compressed_sensing(m=40, d=64, k_star=3, seed=0)
    assert observed_run(UserIHT(max_iter=3), problem).trace[1]["bound_note"].startswith("no bound for solver")
    bounds.register_theorems(UserIHT, bounds.Theorem("a user's rate", lambda solver, p, e: (0.99 * e, ""), order=1))
    try:
        rows = observed_run(UserIHT(max_iter=3), problem).trace
        assert [row["bound"] for row in rows[1:]] == pytest.approx([0.99 * row["distance"] for row in rows[:-1]])
        assert bounds.theorem_label(UserIHT) == "a user's rate" and bounds.theorem_order(UserIHT) == 1
    finally:
        bounds.THEOREMS.pop(UserIHT)
