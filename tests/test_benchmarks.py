"""The performance fast paths give the reference answers, and the benchmark script runs end to end (smoke mode).

Fast paths checked elsewhere, not repeated here: HiGHS basis pursuit vs cvxpy and LassoLars vs cvxpy's Lasso
(``tests/test_known_answer.py``), OMP vs scikit-learn for k < 32 (``tests/test_classic_solvers.py``).
No test here asserts a timing.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import scipy.linalg
from sklearn.linear_model import OrthogonalMatchingPursuit

from benchmarks import peers
from benchmarks import phase_scale
from benchmarks import run as bench
from benchmarks.cli import CliRun
from benchmarks.harness import Settings, fit_exponent
from benchmarks.report import Machine, Row, write_markdown
from problems import make_compressed_sensing, make_quartic_sensing
from solvers import make_solver
from solvers._kernels import (SPARSE_PRODUCT_DENSITY, cholesky_solve, gradient_at, solve_lower_triangular,
                              sparse_product)
from solvers.pursuit import TRANSPOSED_COPY_MIN_ATOMS


@pytest.mark.parametrize("nonzeros", [0, 3, 200])
def test_sparse_product_equals_the_dense_product(nonzeros):
    rng = np.random.default_rng(nonzeros)
    A, v = rng.standard_normal((30, 200)), np.zeros(200)
    v[rng.choice(200, size=nonzeros, replace=False)] = rng.standard_normal(nonzeros)
    assert (nonzeros <= SPARSE_PRODUCT_DENSITY * 200) == (nonzeros < 200)  # both branches are exercised
    np.testing.assert_allclose(sparse_product(A, v), A @ v, rtol=0, atol=1e-13)


def test_gradient_at_equals_the_problem_gradient():
    x = np.zeros(120)
    x[[3, 50, 99]] = [1.0, -2.0, 0.5]
    for problem in (make_compressed_sensing(m=40, d=120, k_star=4, seed=0),
                    make_quartic_sensing(m=40, d=120, k_star=4, seed=0)):  # least squares / any other problem
        np.testing.assert_allclose(gradient_at(problem, x), problem.gradient(x), rtol=0, atol=1e-12)


def test_lapack_level_solves_match_scipy_exactly():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((12, 12))
    L = np.linalg.cholesky(M @ M.T + 12 * np.eye(12))
    b = rng.standard_normal(8)
    np.testing.assert_array_equal(solve_lower_triangular(L[:8, :8], b),
                                  scipy.linalg.solve_triangular(L[:8, :8], b, lower=True))
    np.testing.assert_array_equal(cholesky_solve(L[:8, :8], b), scipy.linalg.cho_solve((L[:8, :8], True), b))


def test_omp_with_its_column_major_copy_agrees_with_scikit_learn():
    k = TRANSPOSED_COPY_MIN_ATOMS + 4
    problem = make_compressed_sensing(m=120, d=300, k_star=20, snr_db=30.0, seed=3)
    result = make_solver("omp", k=k).run(problem)
    reference = OrthogonalMatchingPursuit(n_nonzero_coefs=k, fit_intercept=False).fit(problem.A, problem.y)
    np.testing.assert_allclose(result.x, reference.coef_, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["lars", "highs"])
def test_basis_pursuit_fast_paths_agree_with_clarabel_to_the_benchmark_tolerance(method):
    problem = make_compressed_sensing(m=50, d=120, k_star=5, seed=4)  # inside the l1 phase boundary: unique
    fast = make_solver("basis_pursuit", method=method).run(problem).x
    clarabel = make_solver("basis_pursuit", method="cvxpy", cvxpy_solver="CLARABEL").run(problem).x
    assert np.max(np.abs(fast - clarabel)) <= 1e-6


def test_rows_compare_the_ratio_or_the_value_with_the_target():
    assert Row("g", "t", 2.0, "ms", reference=4.0, threshold=1.0).met == "yes"
    assert Row("g", "t", 30.0, "s", reference=2.0, threshold=10.0, sense=">=").met == "yes"
    assert Row("g", "t", 700.0, "s", threshold=600.0).met == "no"
    assert Row("g", "t", 1.0, "").met == "n/a"
    assert fit_exponent([10, 20, 40], [1.0, 4.0, 16.0]) == pytest.approx(2.0)


def test_a_failed_diagram_is_not_measured_never_met(monkeypatch, tmp_path):
    """A diagram whose command fails (killed, crashed) has no wall time to hold against the budget: its row has no
    value and is ``n/a``, however soon it failed."""
    stopped = CliRun(seconds=433.0, returncode=-15, tail="Terminated")
    monkeypatch.setattr(phase_scale, "run_obsbench", lambda *args, **kwargs: stopped)
    settings = Settings(smoke=True, repeats=1, blas_threads=1, scratch=tmp_path, out=tmp_path)
    row, curves = phase_scale.diagram("basis_pursuit", [], "basis_pursuit", settings)
    assert np.isnan(row.value) and row.met == "n/a" and "FAILED after 433 s (exit -15)" in row.note
    assert curves.empty
    text = write_markdown([row], Machine("test machine", "test BLAS"), tmp_path / "b.md", "cmd", 433.0).read_text()
    assert "targets met: 0, missed: 0, not measured (a failed command) or without a target: 1" in text


def test_a_peer_that_is_not_installed_is_reported_not_fatal(monkeypatch):
    def missing(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(peers.importlib, "import_module", missing)
    available = peers.peer_solvers()
    assert available["skscope IHT"] is None and available["abess"] is None
    records = {"iht": peers.Record([0.1], [0.2], [True])}
    row = peers.comparison_row("iht", "tiny", records, available)
    assert row.met == "n/a" and "peer not installed: skscope IHT, abess" in row.note


@pytest.mark.slow  # ~20 s; `make test-all`
def test_benchmark_script_runs_every_group_in_smoke_mode(tmp_path):
    assert bench.main(["--smoke", "--out", str(tmp_path)]) == 0
    with (tmp_path / "benchmarks.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    groups = {row["group"].split(" ", 1)[0] for row in rows}
    assert groups == {str(i) for i in range(1, 9)}  # one or more rows for each of the eight groups
    assert all(row["met"] in ("yes", "no", "n/a") and row["machine"] and row["date"] for row in rows)
    assert not [row["target"] for row in rows if "FAILED" in row["note"]]  # every command line of every group ran
    table = (tmp_path / "benchmarks.md").read_text()
    assert "| group | target | measured |" in table and "machine:" in table
    assert (tmp_path / "scaling.png").is_file()


def test_stall_replay_finds_the_first_iteration_the_rule_would_stop():
    from benchmarks.stall_rule import first_stop

    objective = np.array([8.0, 4.0, 2.0, 1.99, 1.0, 0.999])
    assert first_stop(objective, 1, 0.999) == 5  # 0.999 > 0.999² · 1; 1.99 < 0.999² · 2 is still progress
    assert first_stop(objective, 2, 0.999) is None  # over every two steps f at least halves
    assert first_stop(objective, 1, 0.5) == 1  # 4 > 0.25 · 8


def test_gpu_check_script_runs_on_the_cpu_and_reports_each_check(tmp_path):
    """The GPU check list (`benchmarks/gpu_check.py`) is prepared for a session that is lent a GPU: its
    device-agnostic checks run here on tiny sizes (the pruning checks load SmolLM2, ~1 min each: run by hand),
    a CUDA-only check says it was not measured, and an unknown check is a usage error."""
    pytest.importorskip("torch")
    from benchmarks import gpu_check

    path = gpu_check.main(["--device", "cpu", "--quick", "--checks", "solvers,iteration,memory", "--out",
                           str(tmp_path)])
    report = path.read_text()
    assert "## solvers" in report and "## iteration" in report and "Not measured" in report
    assert "Failed" not in report
    solver_rows = [line for line in report.splitlines() if line.startswith("| ") and "/" in line.split("|")[3]]
    assert len(solver_rows) == len(gpu_check.BATCHED)  # one per one-trial solver with a batched twin
    assert all(row.split("|")[3].strip().split("/")[0] == row.split("|")[3].strip().split("/")[1]
               for row in solver_rows)
    with pytest.raises(SystemExit):
        gpu_check.main(["--checks", "nope", "--out", str(tmp_path)])
