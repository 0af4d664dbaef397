"""Batched trials (`solvers.batched`, `problems.batched`): every batched solver against its one-trial solver on the
same seeds, trials leaving the batch, the torch backend against numpy, and phase diagrams batched or not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from experiments.kinds.phase_grid import Execution, Rule, cell_groups, execution, plan_cells
from experiments.kinds.phase_transition import run, success_table
from problems.batched import ProblemBatch, build_batch
from problems.nonquadratic import make_logistic_regression
from problems.sensing import make_compressed_sensing
from solvers._kernels import top_k_indices
from solvers.batched import BATCHED, MAX_BLOCK, NumpyBackend, batched_for, run_batched
from solvers.convex import BasisPursuit
from solvers.hard_thresholding import HTP, IHT, NIHT
from solvers.iobs import TopkIOBS
from solvers.pursuit import OMP, CoSaMP, SubspacePursuit

#: (class, parameters): every batched solver; max_iter small enough that failing trials reach it quickly
SOLVERS = {
    "iht": (IHT, dict(max_iter=300)),
    "niht": (NIHT, dict(max_iter=300)),
    "htp": (HTP, {}),
    "cosamp": (CoSaMP, dict(max_iter=100)),
    "sp": (SubspacePursuit, {}),
    "omp": (OMP, {}),
    "topk_iobs": (TopkIOBS, dict(damping=1e-3, max_iter=300)),
}
#: (m, d, budgets): the cells of one δ column share (m, d) and one batch; from easy cells to cells beyond the
#: phase transition (failures, max_iter, cycles), k ≥ 32 for OMP's column-major products, and k ≥ m.
COLUMNS = [(25, 50, (2, 5, 9, 14, 25)), (40, 60, (3, 10, 20, 33, 40)), (10, 64, (1, 3, 5)), (60, 64, (2, 35, 50))]
TRIALS = 7  # per cell: 16 cells, 112 trials per solver
ROW_FLOATS = ("objective", "distance", "rel_error", "support_recall", "step_size")


def column_batch(name: str, m: int, d: int, budgets: tuple[int, ...], trials: int = TRIALS):
    """The instances of a column (seeds 1000·k + trial) and one solver per instance (one per cell)."""
    cls, params = SOLVERS[name]
    problems, solvers = [], []
    for k in budgets:
        solver = cls(k=k, **params)
        for trial in range(trials):
            problems.append(make_compressed_sensing(m=m, d=d, k_star=k, seed=1000 * k + trial))
            solvers.append(solver)
    return ProblemBatch.from_problems(problems), solvers


def assert_same_result(one, batched, rtol: float = 1e-10, exact: bool = True) -> None:
    """Same verdict and iteration count, final x to ``rtol`` (relative), the same final trace row (``exact``:
    bit for bit, and the same message)."""
    assert (batched.status, batched.n_iter) == (one.status, one.n_iter), (one.message, batched.message)
    assert np.array_equal(np.isnan(batched.x), np.isnan(one.x))  # failed runs end on a NaN point
    with np.errstate(over="ignore", invalid="ignore"):  # diverged points overflow
        assert np.linalg.norm(np.nan_to_num(batched.x - one.x)) <= rtol * np.linalg.norm(np.nan_to_num(one.x))
    row, other = one.trace[-1], batched.trace[-1]
    assert (other["iteration"], other["support_size"]) == (row["iteration"], row["support_size"])
    if exact:
        assert batched.message == one.message
        assert np.array_equal(batched.x, one.x, equal_nan=True)
        for column in ROW_FLOATS:
            assert other[column] == row[column] or (np.isnan(other[column]) and np.isnan(row[column])), column
    else:  # not the step size: NIHT's last μ is a ratio of two rounding-level norms once the residual vanishes
        for column in ROW_FLOATS[:-1]:
            assert other[column] == pytest.approx(row[column], rel=1e-8, abs=1e-12, nan_ok=True), column


@pytest.mark.parametrize("name", SOLVERS)
def test_batched_solver_reproduces_the_one_trial_solver(name):
    """112 trials per solver over 16 cells (d = 50..64), batched by δ column with a budget per cell: the final
    iterate, status, message, iteration count and final row of every trial are those of the one-trial solver
    (numpy: bit for bit — decisions taken from floats, top-k ties and stopping, agree on every seed)."""
    cls, params = SOLVERS[name]
    outcomes = []
    for m, d, budgets in COLUMNS:
        batch, solvers = column_batch(name, m, d, budgets)
        results = BATCHED[cls](solvers[0]).run(batch, solvers=solvers)
        for problem, solver, batched in zip(batch.problems, solvers, results):
            one = cls(k=solver.k, **params).run(problem)
            assert_same_result(one, batched)
            outcomes.append((one.status, one.trace[-1]["rel_error"] <= 1e-4))
    assert len(outcomes) >= 100
    successes = [success for _, success in outcomes]
    assert any(successes) and not all(successes)  # the cells reach beyond the phase transition


@pytest.mark.parametrize("name", SOLVERS)
def test_stalled_trials_end_as_alone(name):
    """With the stall rule on (w = 10, ρ = 0.999: less than 2% decrease of f in 10 iterations ends a run), the
    batched and one-trial runs stop the same trials at the same iteration with the same message; failing trials
    that stall are failures (a budget k = m fits y exactly at a wrong point and keeps descending: no stall)."""
    cls, params = SOLVERS[name]
    params = {**params, "stall_window": 10}
    statuses = []
    for m, d, budgets in COLUMNS[:2]:
        problems = [make_compressed_sensing(m=m, d=d, k_star=k, seed=1000 * k + trial)
                    for k in budgets for trial in range(TRIALS)]
        solvers = [cls(k=k, **params) for k in budgets for _ in range(TRIALS)]
        results = BATCHED[cls](solvers[0]).run(ProblemBatch.from_problems(problems), solvers=solvers)
        for problem, solver, batched in zip(problems, solvers, results):
            one = solver.run(problem)
            assert_same_result(one, batched)
            statuses.append(one.status)
            if one.status == "stalled":
                trace = pd.DataFrame(one.trace).set_index("iteration")["objective"]
                t = one.n_iter
                assert t >= 10 and trace[t] > 0.999 ** 20 * trace[t - 10]
                assert one.trace[-1]["rel_error"] > 1e-4
    if name not in ("htp", "sp", "omp"):  # these end at a fixed point or a cycle within a few iterations
        assert "stalled" in statuses


@pytest.mark.parametrize("params, message", [
    (dict(stall_window=0), "stall_window=0 must be a positive integer"),
    (dict(stall_window=15, stall_rate=1.0), "stall_rate=1.0 must be a finite number > 0 and < 1"),
    (dict(stall_window=15, stall_rate=0.0), "stall_rate")])
def test_stall_parameters_are_checked(params, message):
    from solvers.base import SolverConfigError

    with pytest.raises(SolverConfigError, match=message):
        IHT(**params).run(make_compressed_sensing(m=20, d=40, k_star=2, seed=0))


@pytest.mark.parametrize("params", [dict(step_scale=8.0), dict(step_scale=8.0, divergence_factor=1e300)])
def test_diverging_trials_end_as_alone(params):
    """A step 8/L blows up: the error passes the blow-up scale (or, with that scale at 1e300, the iterate
    overflows) at the same iteration, with the same message, as in the one-trial run."""
    batch = build_batch(make_compressed_sensing, range(8), m=30, d=60, k_star=5)
    results = run_batched(IHT(max_iter=3000, **params), batch)
    for problem, result in zip(batch.problems, results):
        assert_same_result(IHT(max_iter=3000, **params).run(problem), result)
        assert result.status == "diverged"


def test_top_k_sets_are_the_one_trial_sets_ties_and_nan_included():
    """Rows with ties at the k-th magnitude, NaN, zeros, budgets per row and beyond d: the set of
    `solvers._kernels.top_k_indices` (the same introselect decides the ties)."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        V = np.round(rng.standard_normal((30, 12)), 1)  # one decimal: many ties
        V[3, 2], V[5, :4], V[6], V[4] = np.nan, np.nan, np.nan, 0.0
        for k in (rng.integers(1, 15, size=30), 1, 5, 12, 20):
            mask = NumpyBackend().topk_mask(V, k)
            for i, ki in enumerate(np.broadcast_to(k, (30,))):
                expected = np.zeros(12, dtype=bool)
                expected[top_k_indices(V[i], int(ki))] = True
                assert np.array_equal(mask[i], expected)


def test_finished_trials_leave_the_batch():
    """A trial takes part in no iteration after the one that ended it (its iterate no longer changes), the
    batch shrinks as trials finish, and a trial's result does not depend on the other trials of its batch."""
    batch, solvers = column_batch("iht", 25, 50, (2, 5, 14))
    seen: dict[int, list[tuple[int, np.ndarray]]] = {}
    engine = BATCHED[IHT](solvers[0])
    results = engine.run(batch, solvers=solvers,
                         monitor=lambda t, ids, x: [seen.setdefault(i, []).append((t, row)) for i, row in zip(ids, x)])
    sizes = engine.active_sizes_
    assert sizes[0] == batch.size and sizes == sorted(sizes, reverse=True) and sizes[-1] < batch.size
    assert len(set(sizes)) > 3
    for i, result in enumerate(results):
        steps = [t for t, _ in seen[i]]
        assert steps == list(range(1, len(steps) + 1))
        # the last step a trial takes is the one that ended it (n_iter; n_iter + 1 when it stopped at x_{t-1})
        assert steps[-1] in (result.n_iter, result.n_iter + 1)
        if result.status == "max_iter" or result.message.startswith("converged"):
            assert np.array_equal(seen[i][-1][1], result.x)
        alone = BATCHED[IHT](solvers[i]).run(ProblemBatch.from_problems([batch.problems[i]]))[0]
        assert_same_result(alone, result)


def test_failed_init_and_invalid_batches():
    """A trial whose one-trial init fails is an error row (the others run); solvers of a batch must agree in all
    but k; solvers without a twin (or with a per-trial clock) run one by one; batches need least squares of one
    shape."""
    batch = build_batch(make_compressed_sensing, [0, 1], m=20, d=40, k_star=3)
    results = run_batched(TopkIOBS(k=3), batch)  # no damping with m < d: the one-trial init refuses
    for problem, result in zip(batch.problems, results):
        assert_same_result(TopkIOBS(k=3).run(problem), result)
        assert result.status == "error" and "set damping > 0" in result.message
    with pytest.raises(ValueError, match="share the solver"):
        BATCHED[IHT](IHT(k=3)).run(batch, solvers=[IHT(k=3), IHT(k=3, step_scale=0.5)])
    assert batched_for(BasisPursuit())[0] is None and batched_for(IHT(time_budget=1.0))[0] is None
    with pytest.raises(ValueError, match="basis_pursuit"):
        run_batched(BasisPursuit(), batch)
    with pytest.raises(ValueError, match="share"):
        ProblemBatch.from_problems([batch.problems[0], make_compressed_sensing(m=21, d=40, k_star=3, seed=0)])
    with pytest.raises(ValueError, match="least-squares"):
        ProblemBatch.from_problems([make_logistic_regression(n=30, d=12, k_star=3, seed=0)])


# --- torch ----------------------------------------------------------------------------------------------------

#: Cells for the torch comparison. Where CoSaMP's merged set outgrows m (3k > m) and the fit is exact, its next
#: merge is chosen by the rounding noise of Aᵀr ≈ 0 (the one-trial solver too): there any other BLAS takes other
#: (equally valid) decisions, so such cells compare numpy with the one-trial solver only.
TORCH_COLUMNS = [(25, 50, (2, 6)), (48, 64, (3, 14))]


@pytest.mark.parametrize("name", SOLVERS)
def test_torch_backend_equals_numpy(name):
    """float64 torch on the CPU against the numpy path: the same statuses and iteration counts, final iterates
    and rows to 1e-10."""
    pytest.importorskip("torch")
    cls, _ = SOLVERS[name]
    for m, d, budgets in TORCH_COLUMNS:
        batch, solvers = column_batch(name, m, d, budgets, trials=3)
        reference = BATCHED[cls](solvers[0]).run(batch, solvers=solvers)
        results = BATCHED[cls](solvers[0], backend="torch", device="cpu").run(batch, solvers=solvers)
        for one, batched in zip(reference, results):
            assert_same_result(one, batched, exact=False)


# --- phase diagrams -------------------------------------------------------------------------------------------

def config(tmp_path, *overrides: str):
    with initialize_config_module(config_module="conf", version_base=None):
        return compose("config", overrides=[f"paths.results={tmp_path / 'results'}", *overrides])


GRID = ("experiment=phase_transition", "problem.d=32", "experiment.deltas=3", "experiment.rhos=4",
        "experiment.trials=4", "experiment.n_jobs=1", "experiment.progress=false")


@pytest.mark.parametrize("solver", ["iht", "cosamp"])
def test_phase_diagram_rows_are_the_same_batched_or_not(tmp_path, solver):
    """The same stored rows and the same phase_cells table (times apart) batched or one by one, under the same
    run ids: a grid computed batched resumes one by one and the other way round."""
    frames = {flag: run(config(tmp_path / flag, *GRID, f"solver={solver}", f"experiment.batched={flag}"))
              for flag in ("true", "false")}
    sort = ["run_id", "trial"]
    batched, single = (frames[flag].sort_values(sort).reset_index(drop=True).drop(columns=["time_s", "created_at"])
                       for flag in ("true", "false"))
    pd.testing.assert_frame_equal(batched, single)
    cfg = config(tmp_path / "true", *GRID, f"solver={solver}")
    tables = [success_table(frames[flag], Rule("rel_error", 1e-4)).drop(columns=["median_time_s"]) for flag in frames]
    pd.testing.assert_frame_equal(*tables)
    assert set(batched["success"]) == {True, False}
    # resume across the setting: nothing is recomputed
    stored = sorted((tmp_path / "true" / "results").rglob("*.parquet"))
    stamps = [path.stat().st_mtime_ns for path in stored]
    run(config(tmp_path / "true", *GRID, f"solver={solver}", "experiment.batched=false"))
    assert [path.stat().st_mtime_ns for path in stored] == stamps
    assert len(cell_groups(plan_cells(cfg), execution(cfg))) < len(plan_cells(cfg))  # small columns together


@pytest.mark.parametrize("override, message", [
    ("experiment.batched=maybe", "experiment.batched='maybe' must be true or false"),
    ("experiment.backend=jax", "experiment.backend='jax' must be one of numpy, torch"),
    ("experiment.device=cuda", "needs backend=torch"),
])
def test_invalid_execution_settings_are_one_line_errors(tmp_path, override, message):
    cfg = config(tmp_path, *GRID, override)
    with pytest.raises(ValueError, match=message) as info:
        plan_cells(cfg)
    assert "\n" not in str(info.value)


def test_execution_settings_default_when_absent():
    """A config without the keys (e.g. the phase diagram part of experiment=compare) runs batched on numpy."""
    assert execution(OmegaConf.create({"experiment": {"name": "compare_phase_transition"}})) == Execution()
    assert Execution() == Execution(True, "numpy", None)


@pytest.mark.parametrize("cls, step_scale", [(IHT, 1.9), (IHT, 4.0), (HTP, 4.0)])
def test_cycle_rule_filter_keeps_every_cycle_of_non_descent_runs(cls, step_scale):
    """The batched cycle rule compares only iterates whose objective is not below every earlier one
    (`BatchedSolver._cycles`). With a step beyond 1/L neither IHT nor HTP is a descent method (IHT diverges and
    now and then cycles; HTP at 4/L cycles in about half of these trials: 54-65 of 112 over four seed sets):
    every trial still ends as it does alone, cycles included."""
    messages = []
    for m, d, budgets in COLUMNS:
        problems = [make_compressed_sensing(m=m, d=d, k_star=k, seed=1000 * k + trial)
                    for k in budgets for trial in range(TRIALS)]
        solvers = [cls(k=k, step_scale=step_scale) for k in budgets for _ in range(TRIALS)]
        results = BATCHED[cls](solvers[0]).run(ProblemBatch.from_problems(problems), solvers=solvers)
        for problem, solver, batched in zip(problems, solvers, results):
            assert_same_result(solver.run(problem), batched)
            messages.append(batched.message)
    if cls is HTP:
        assert sum("cycle" in message for message in messages) >= 20


@pytest.mark.parametrize("m, d, k, step_scale", [(3, 6, 2, 1.9), (4, 8, 2, 2.0), (4, 8, 2, 3.0)])
def test_speculative_blocks_end_every_trial_where_it_ends_alone(m, d, k, step_scale):
    """IHT runs blocks of up to `MAX_BLOCK` iterations ahead of the rules (`BatchedSolver._block`). On tiny
    instances with long steps, 300 trials per case end in every way (convergence, cycles, max_iter) at
    iterations all over the blocks: each ends at the iteration, point and message of its one-trial run."""
    problems = [make_compressed_sensing(m=m, d=d, k_star=k, seed=seed) for seed in range(300)]
    solver = IHT(k=k, step_scale=step_scale, max_iter=300, divergence_factor=1e300)
    assert BATCHED[IHT].speculative
    results = BATCHED[IHT](solver).run(ProblemBatch.from_problems(problems))
    cycles = []
    for problem, batched in zip(problems, results):
        one = solver.run(problem)
        assert_same_result(one, batched)
        if "cycle" in one.message:
            cycles.append(int(one.message.split("(x_")[1].split(" ")[0]))  # t of x_t = x_s
    assert len(cycles) >= 4 and len({t % MAX_BLOCK for t in cycles}) >= 3, cycles
