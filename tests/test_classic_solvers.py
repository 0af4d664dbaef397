"""Known-answer tests of the classic comparators (NIHT, HTP, SP, OMP, stochastic IHT) and recovery by every
solver added with them (including the I-OBS family) on easy noiseless instances."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import OrthogonalMatchingPursuit

from problems import make_compressed_sensing
from solvers import SolverConfigError, make_solver

#: solver name -> parameters for the easy instance (I-OBS variants need damping: AᵀA is singular for m < d).
RECOVERY = {
    "niht": {},
    "htp": {},
    "sp": {},
    "omp": {},
    "stochastic_iht": dict(batch_size=50, max_iter=2000),
    "stochastic_iobs": dict(batch_size=50, max_iter=2000),
    "topk_iobs": dict(damping=1e-3),
    "iobs_obs": dict(damping=1e-3),
    "iobs_obs-topk": dict(damping=1e-3, support="topk"),
}


@pytest.mark.parametrize("key", list(RECOVERY))
def test_recovers_x_star_on_an_easy_noiseless_instance(key):
    for seed in range(3):
        problem = make_compressed_sensing(m=100, d=256, k_star=5, seed=seed)
        result = make_solver(key.split("-")[0], **RECOVERY[key]).run(problem)
        assert result.status == "ok", result.message
        assert result.trace[-1]["rel_error"] < 1e-6
        assert np.count_nonzero(result.x) <= problem.k_star


def test_exact_iobs_recovers_x_star_on_a_tiny_instance():
    for seed in range(3):
        problem = make_compressed_sensing(m=10, d=16, k_star=2, seed=seed)
        result = make_solver("iobs_exact", damping=1e-6).run(problem)
        assert result.status == "ok" and result.trace[-1]["rel_error"] < 1e-6
        assert np.count_nonzero(result.x) <= 2


@pytest.mark.filterwarnings("ignore:Orthogonal matching pursuit ended prematurely:RuntimeWarning")
@pytest.mark.parametrize("seed", range(4))
def test_omp_agrees_with_scikit_learn(seed):
    noise = dict(snr_db=20.0) if seed % 2 else {}
    problem = make_compressed_sensing(m=60, d=120, k_star=6, seed=seed, **noise)
    for k in (6, 10):
        result = make_solver("omp", k=k).run(problem)
        reference = OrthogonalMatchingPursuit(n_nonzero_coefs=k, fit_intercept=False).fit(problem.A, problem.y)
        np.testing.assert_allclose(result.x, reference.coef_, rtol=0, atol=1e-10)


def test_omp_records_one_row_per_selected_atom():
    problem = make_compressed_sensing(m=60, d=120, k_star=6, snr_db=30.0, seed=0)
    result = make_solver("omp", k=8).run(problem)
    sizes = [row["support_size"] for row in result.trace]
    assert sizes == list(range(9))  # k atoms, k rows after x0, no repeated final row
    assert result.status == "ok" and result.n_iter == 8 and result.message == "selected k=8 atoms"


def test_omp_stops_when_the_residual_is_orthogonal_to_every_column():
    noiseless = make_compressed_sensing(m=40, d=80, k_star=2, seed=0)  # residual 0 after 2 atoms
    result = make_solver("omp", k=8).run(noiseless)
    assert result.status == "ok" and np.count_nonzero(result.x) == 2
    reference = OrthogonalMatchingPursuit(n_nonzero_coefs=8, fit_intercept=False)
    with pytest.warns(RuntimeWarning, match="linear dependence"):
        reference.fit(noiseless.A, noiseless.y)
    np.testing.assert_allclose(result.x, reference.coef_, rtol=0, atol=1e-10)
    exhausted = make_compressed_sensing(m=5, d=12, k_star=2, snr_db=10.0, seed=0)  # 5 atoms span ℝ⁵
    result = make_solver("omp", k=8).run(exhausted)
    assert result.status == "ok" and np.count_nonzero(result.x) == 5
    assert np.linalg.norm(exhausted.residual(result.x)) < 1e-12 * np.linalg.norm(exhausted.y)


def test_niht_step_is_the_exact_line_search_or_passes_the_safeguard():
    """μ₀ = ‖g_Γ‖²/‖Ag_Γ‖²; a support-changing step must satisfy μ ≤ ω. Checked to 1e-9 on the steps that move
    x by more than 1e-6‖x*‖: the solver forms Ax from the support's columns, this reference densely, and once
    the gradient is at rounding level the two line searches differ by rounding alone."""
    problem = make_compressed_sensing(m=80, d=200, k_star=8, matrix="toeplitz", rho=0.5, seed=1)
    A, c = problem.A, 0.01
    history, steps = [problem.x0], []
    make_solver("niht", c=c).run(problem, callbacks=[lambda s, state, row: (history.append(state.x),
                                                                            steps.append(state.step_size))])
    shrunk = 0
    for x, x_new, mu in zip(history[:-1], history[1:], steps):
        g = A.T @ (problem.y - A @ x)
        support = np.flatnonzero(x) if np.any(x) else np.argsort(-np.abs(g))[:problem.k_star]
        g_s = np.zeros_like(g)
        g_s[support] = g[support]
        mu0 = (g_s @ g_s) / np.sum((A @ g_s) ** 2)
        dx = x_new - x
        if np.linalg.norm(dx) <= 1e-6 * np.linalg.norm(problem.x_star):
            continue
        omega = (1 - c) * (dx @ dx) / np.sum((A @ dx) ** 2)
        if np.array_equal(np.flatnonzero(x_new), np.sort(support)) and mu == pytest.approx(mu0, rel=1e-9):
            continue
        assert mu <= mu0 * (1 + 1e-9) and mu <= omega * (1 + 1e-9)
        shrunk += mu < mu0 * (1 - 1e-9)
    assert len(steps) > 5 and shrunk >= 1


def test_htp_iterates_are_least_squares_fits_and_it_stops_when_the_support_repeats():
    problem = make_compressed_sensing(m=80, d=160, k_star=6, snr_db=25.0, seed=2)
    iterates = []
    result = make_solver("htp").run(problem, callbacks=[lambda s, state, row: iterates.append(state.x)])
    for x in iterates:
        support = np.flatnonzero(x)
        assert support.size <= 6
        assert np.max(np.abs(problem.gradient(x)[support])) < 1e-10
    assert result.status == "ok" and result.n_iter < 20 and result.n_iter == len(iterates)
    assert result.message.startswith("support unchanged")
    assert not np.array_equal(iterates[-1], iterates[-2])  # the repeat is detected, not recorded


@pytest.mark.parametrize("name", ["omp", "sp", "htp"])
def test_solvers_with_their_own_stopping_rule_never_record_a_repeated_point(name):
    for seed in range(6):
        problem = make_compressed_sensing(m=60, d=128, k_star=6, snr_db=30.0 if seed % 2 else None, seed=seed)
        result = make_solver(name).run(problem)
        points = [row["objective"] for row in result.trace]
        assert result.status == "ok" and len(points) == result.n_iter + 1
        assert all(a != b for a, b in zip(points[:-1], points[1:])), (seed, points)


def test_sp_residual_never_increases():
    problem = make_compressed_sensing(m=70, d=200, k_star=10, snr_db=15.0, seed=3)
    residuals = []
    result = make_solver("sp").run(problem, callbacks=[
        lambda s, state, row: residuals.append(np.linalg.norm(problem.residual(state.x)))])
    assert result.status == "ok"
    assert np.all(np.diff(residuals) <= 1e-12)


def test_stochastic_iht_with_the_full_batch_is_iht():
    problem = make_compressed_sensing(m=100, d=256, k_star=5, seed=4)
    iht = make_solver("iht", max_iter=40).run(problem)
    for batch_size in (100, 500):  # a batch larger than the data set is capped at all rows
        full = make_solver("stochastic_iht", batch_size=batch_size, max_iter=40).run(problem)
        np.testing.assert_allclose(full.x, iht.x, atol=1e-12)


def test_stochastic_iht_is_deterministic_given_its_seed():
    problem = make_compressed_sensing(m=100, d=256, k_star=5, seed=5)
    runs = [make_solver("stochastic_iht", batch_size=10, seed=s, max_iter=25).run(problem).x for s in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("name, params", [
    ("niht", dict(c=0.0)), ("niht", dict(c=0.5, kappa=1.5)), ("htp", dict(step_size=-1.0)),
    ("stochastic_iht", dict(batch_size=0)), ("stochastic_iht", dict(seed=-1)), ("omp", dict(k=0)),
])
def test_invalid_parameters_are_refused(name, params):
    problem = make_compressed_sensing(m=40, d=64, k_star=4, seed=0)
    with pytest.raises(SolverConfigError):
        make_solver(name, **params).run(problem)
