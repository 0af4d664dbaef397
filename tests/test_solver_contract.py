"""Contract tests parametrised over every solver YAML in conf/solver/ (a new solver is tested for free),
and over the Python registry, which must match the YAMLs one to one."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from experiments.store.results import TRACE_COLUMNS
from experiments.execution.runner import build
from solvers.base import REGISTRY, STATUSES, Solver, SolverConfigError

from .conftest import CONF

ALL_YAMLS = sorted(CONF.glob("solver/*.yaml"))
#: Aliases (a YAML whose defaults list names another solver, e.g. bp -> basis_pursuit) are tested apart.
ALIASES = [p for p in ALL_YAMLS if "defaults" in OmegaConf.load(p)]
SOLVER_YAMLS = [p for p in ALL_YAMLS if p not in ALIASES]
IDS = [p.stem for p in SOLVER_YAMLS]
# Solvers with a sparsity budget, and those that reach x* exactly (the Lasso is biased by design).
BUDGETED = [p for p in SOLVER_YAMLS if REGISTRY[p.stem].needs_k]
EXACT = [p for p in SOLVER_YAMLS if REGISTRY[p.stem].recovery_tol is not None]


def make(path, **overrides) -> Solver:
    """Build a solver from its YAML as the app composes it (top-level keys such as newton_damping resolved)."""
    root = OmegaConf.merge(OmegaConf.load(CONF / "config.yaml"), {"solver": OmegaConf.load(path)},
                           {"solver": overrides})
    return build(root.solver, "solver")


def test_every_registered_solver_has_a_yaml_and_vice_versa():
    package = {name: cls for name, cls in REGISTRY.items() if cls.__module__.startswith("solvers.")}
    targets = {OmegaConf.load(p)["_target_"].rsplit(".", 1)[1] for p in SOLVER_YAMLS}
    assert {cls.__name__ for cls in package.values()} == targets
    assert {p.stem for p in SOLVER_YAMLS} == set(package)


@pytest.mark.parametrize("path", ALIASES, ids=[p.stem for p in ALIASES])
def test_aliases_name_a_registered_solver(path):
    target = OmegaConf.load(path)["defaults"][0]
    assert target in REGISTRY and (CONF / "solver" / f"{target}.yaml").is_file()


@pytest.mark.parametrize("path", SOLVER_YAMLS, ids=IDS)
def test_yaml_keys_equal_constructor_parameters(path):
    node = OmegaConf.load(path)
    cls = type(make(path))
    assert set(node) - {"_target_"} == set(cls.param_names())
    assert cls.references, "cite the paper the implementation follows"


@pytest.mark.parametrize("path", SOLVER_YAMLS, ids=IDS)
def test_run_is_deterministic_and_trace_is_complete(path, small_ls):
    first, second = make(path).run(small_ls), make(path).run(small_ls)
    assert first.status in STATUSES and first.status != "error", first.message
    a, b = first.frame(), second.frame()
    assert list(a.columns) == list(TRACE_COLUMNS)
    assert np.array_equal(first.x, second.x)
    assert a.drop(columns="time_s").equals(b.drop(columns="time_s"))
    numeric = a[["iteration", "time_s", "objective", "distance", "rel_error", "support_recall", "support_size"]]
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()
    assert a["iteration"].is_monotonic_increasing and (a["time_s"].diff().dropna() >= 0).all()


@pytest.mark.parametrize("path", BUDGETED, ids=[p.stem for p in BUDGETED])
def test_sparsity_budget_is_respected(path, small_ls):
    for k in (2, 4):
        solver = make(path, k=k)
        result = solver.run(small_ls)
        assert np.count_nonzero(result.x) <= k
        assert (result.frame()["support_size"].iloc[1:] <= k).all()


@pytest.mark.parametrize("path", EXACT, ids=[p.stem for p in EXACT])
def test_recovers_x_star_on_an_easy_instance(path, small_ls):
    solver = make(path)
    result = solver.run(small_ls)
    assert result.frame()["rel_error"].iloc[-1] < solver.recovery_tol, result.message


@pytest.mark.parametrize("path", BUDGETED, ids=[p.stem for p in BUDGETED])
def test_invalid_k_is_refused_before_running(path, small_ls):
    for k in (0, small_ls.d + 1):
        with pytest.raises(SolverConfigError, match="k="):
            make(path, k=k).run(small_ls)
