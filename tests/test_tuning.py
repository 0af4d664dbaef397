"""Tuned baselines (solvers.tuning): the best grid run by final objective, named <solver>_tuned, charged the whole
grid's time, refusing bad grids before running."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from experiments.store.results import tidy_rows
from problems import make_compressed_sensing
from solvers.base import REGISTRY, SolverConfigError, make_solver
from solvers.tuning import FAILED_STATUSES, Tuned, TunedPreset, best_run

from .conftest import CONF

STEP_SCALES = [0.5, 1.0, 1.5, 1.9]


def instances():
    """A few compressed-sensing instances, noiseless and noisy, on which the step matters."""
    for seed in range(3):
        yield make_compressed_sensing(m=60, d=128, k_star=5, snr_db=30.0 if seed % 2 else None, seed=seed)


def final_objective(result) -> float:
    return result.trace[-1]["objective"]


def test_tuned_equals_the_base_run_at_its_best_grid_point():
    for problem in instances():
        tuned = Tuned(solver="iht", grid={"step_scale": STEP_SCALES}, params={"k": 5, "max_iter": 300})
        result = tuned.run(problem)
        parts = [make_solver("iht", k=5, max_iter=300, step_scale=s).run(problem) for s in STEP_SCALES]
        best = tuned.best_point_["step_scale"]
        twin = parts[STEP_SCALES.index(best)]
        assert np.array_equal(result.x, twin.x)
        assert result.n_iter == twin.n_iter and result.status == twin.status
        assert all(final_objective(result) <= final_objective(part) for part in parts
                   if part.status not in FAILED_STATUSES)
        untimed = [{k: v for k, v in row.items() if k != "time_s"} for row in result.trace]
        assert untimed == [{k: v for k, v in row.items() if k != "time_s"} for row in twin.trace]


def test_name_message_and_time_account_for_the_whole_grid():
    problem = next(instances())
    solver = make_solver("iht_tuned", k=5, max_iter=200)
    result = solver.run(problem)
    assert solver.name == "iht_tuned" and type(solver).name == "iht_tuned"
    best = solver.best_point_["step_scale"]
    assert result.message.startswith(f"tuned over step_scale in [0.5, 1, 1.5, 1.9]: best step_scale={best:g}")
    own = solver.best_solver_.run(problem)
    assert result.time_s >= own.time_s  # the other runs' time is added (no timing threshold asserted)
    times = [row["time_s"] for row in result.trace]
    assert times == sorted(times) and times[-1] <= result.time_s


def test_generic_tuned_is_named_after_its_base_and_not_registered():
    tuned = Tuned(solver="niht", grid={"c": [0.01, 0.1]})
    assert tuned.name == "niht_tuned"
    assert tuned.requires == REGISTRY["niht"].requires and tuned.needs_k
    assert "tuned" not in REGISTRY and Tuned not in REGISTRY.values()
    assert not Tuned(solver="lasso", grid={"lam_ratio": [1e-3]}).needs_k


def test_callbacks_see_only_the_winners_rows():
    problem = next(instances())
    seen = []
    solver = make_solver("iht_tuned", k=5, max_iter=100)
    result = solver.run(problem, callbacks=[lambda s, state, row: seen.append((s, state.x, row))])
    assert len(seen) == len(result.trace) - 1  # every recorded iteration but the starting point
    assert all(s is solver for s, _, _ in seen)
    assert [row for _, _, row in seen] == result.trace[1:]
    assert np.array_equal(seen[-1][1], result.x)


def test_choice_skips_failed_runs_and_keeps_the_first_of_ties():
    from solvers.base import Result

    def run(status, objective):
        return Result(x=np.zeros(1), status=status, message="", n_iter=1, time_s=0.0,
                      trace=[{"objective": objective}])

    assert best_run([run("diverged", 0.0), run("ok", 2.0), run("max_iter", 1.0), run("ok", 1.0)]) == 2
    assert best_run([run("ok", np.nan), run("ok", 3.0)]) == 1
    assert best_run([run("error", np.nan), run("diverged", 5.0)]) == 1  # all failed: lowest objective


@pytest.mark.parametrize("kwargs, match", [
    (dict(solver="no_such_solver", grid={"step_scale": [1.0]}), "not a registered solver"),
    (dict(solver="iht_tuned", grid={"step_scale": [1.0]}), "already tuned"),
    (dict(solver="iht", grid={}), "non-empty mapping"),
    (dict(solver="iht", grid={"lam_ratio": [1e-3]}), "not a parameter of iht"),
    (dict(solver="iht", grid={"step_scale": []}), "non-empty list"),
    (dict(solver="iht", grid={"step_scale": 1.0}), "non-empty list"),
    (dict(solver="iht", grid={"time_budget": [1.0]}), "cannot be tuned"),
    (dict(solver="iht", grid={"step_scale": [1.0, -1.0]}), "step_scale=-1"),
    (dict(solver="niht", grid={"kappa": [1.5, 2.0]}, params={"c": 0.5}), "kappa=1.5"),
    (dict(solver="iht", grid={"step_scale": [1.0]}, params={"step_scale": 2.0}), "both fixed"),
    (dict(solver="iht", grid={"step_scale": [1.0]}, params={"nope": 1}), "not a parameter of iht"),
    (dict(solver="iht", grid={"step_scale": [1.0]}, time_budget=-1.0), "time_budget=-1"),
])
def test_bad_grids_are_refused_before_running(kwargs, match):
    problem = next(instances())
    with pytest.raises(SolverConfigError, match=match) as error:
        Tuned(**kwargs).run(problem)
    assert "\n" not in str(error.value)


def test_presets_refuse_a_fixed_value_for_a_tuned_parameter():
    with pytest.raises(SolverConfigError, match="tuned over grid.step_scale"):
        make_solver("iht_tuned", step_scale=1.0).run(next(instances()))
    with pytest.raises(TypeError):
        make_solver("iht_tuned", lam_ratio=1e-3)


def test_time_budget_is_shared_by_the_grid_runs():
    tuned = Tuned(solver="iht", grid={"step_scale": STEP_SCALES}, time_budget=2.0)
    tuned.validate(next(instances()))
    assert [solver.time_budget for _, solver in tuned.candidates_] == [0.5] * 4


def test_presets_match_their_yaml_and_store_plain_parameters():
    presets = {name: cls for name, cls in REGISTRY.items() if issubclass(cls, TunedPreset)}
    # No Lasso preset: f is the unpenalised least-squares loss, which never grows as lam decreases, so the
    # choice by objective would always take the smallest lam of the grid.
    assert set(presets) == {"iht_tuned", "htp_tuned", "niht_tuned", "topk_iobs_tuned"}
    for name, cls in presets.items():
        node = OmegaConf.load(CONF / "solver" / f"{name}.yaml")
        assert OmegaConf.to_container(node.grid) == cls.default_grid, name
        base = REGISTRY[cls.base_solver]
        assert (cls.needs_k, cls.requires, cls.recovery_tol) == (base.needs_k, base.requires, base.recovery_tol)
    problem = next(instances())
    solver = make_solver("niht_tuned", k=5, max_iter=50)
    result = solver.run(problem)
    frame = tidy_rows(result.trace, run="r", experiment="e", problem=problem.name, solver=solver.name, seed=0,
                      problem_params=problem.params, solver_params=solver.get_params(), status=result.status,
                      message=result.message)
    assert set(frame["solver"]) == {"niht_tuned"}
    assert frame["s_grid"].iloc[0] == '{"c": [0.01, 0.1], "kappa": [2.0, 4.0]}' and frame["s_k"].iloc[0] == 5
