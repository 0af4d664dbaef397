"""Tuned baselines: a registered solver run over a small grid of its parameters, keeping the best run per instance.

Benchmark suites compare a new method against baselines *at their best*: each baseline is run at several values
of the parameter it is sensitive to (IHT's step, the Lasso's λ, ...) and the best run is reported. Here "best"
is judged by the final objective f(x_T) only, never by the distance to x*, so the choice is one a practitioner
could make without knowing the truth (and is fair on real data, where x* is unknown). The tuned baseline pays
for its grid: its reported time is the time of *all* the grid's runs.

Two front ends share one implementation:

- `Tuned` (``Tuned(solver="iht", grid={"step_scale": [0.5, 1.0]}, params={"k": 5})``): any registered solver,
  for use from Python. It is not itself in the registry; each instance is named ``<solver>_tuned``.
- The presets `IHTTuned`, `HTPTuned`, `NIHTTuned`, `TopkIOBSTuned`, registered as ``iht_tuned``,
  ``htp_tuned``, ... with ``conf/solver/<name>.yaml``. Their constructor takes ``grid`` plus every parameter of the
  base solver as a flat keyword (``k``, ``max_iter``, ``damping``, ...), so a preset is configured, overridden
  (``solver.k=5``) and stored (``s_k`` columns) exactly like its base solver. Class-level metadata (``needs_k``,
  ``requires``, ``recovery_tol``, ``invariances``) is the base solver's, as registry-wide code reads it from the
  class.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Iterable

import numpy as np

from problems.base import Problem
from solvers import convex, hard_thresholding, iobs  # noqa: F401  (the preset base solvers must be registered)
from problems.validation import positive
from solvers.base import REGISTRY, Callback, Result, Solver, SolverConfigError, State

log = logging.getLogger(__name__)

#: Statuses of runs that are never chosen while some other grid point has a usable run.
FAILED_STATUSES = frozenset({"error", "diverged"})


def _format_value(value: Any) -> str:
    """A grid value for messages: floats in %g (1.0 -> 1, 1e-3 -> 0.001), None as null, others as str."""
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    if value is None:
        return "null"
    return str(value)


def _format_point(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_format_value(value)}" for key, value in point.items())


def _final_objective(result: Result) -> float:
    """f at the run's final point (the last trace row); NaN if it has none."""
    return float(result.trace[-1]["objective"]) if result.trace else float("nan")


def _usable(result: Result) -> bool:
    """Whether a run may be chosen: it did not fail and its final objective is a finite number."""
    return result.status not in FAILED_STATUSES and math.isfinite(_final_objective(result))


def best_run(results: Sequence[Result]) -> int:
    """Index of the run with the lowest final objective among the usable runs (`_usable`), or among all runs if
    none is usable; ties go to the first run in order. A non-finite objective counts as +inf."""
    usable = [i for i, result in enumerate(results) if _usable(result)]
    candidates = usable or list(range(len(results)))
    best, best_value = candidates[0], np.inf
    for i in candidates:
        value = _final_objective(results[i])
        value = value if math.isfinite(value) else np.inf
        if value < best_value:  # strict: a tie keeps the earlier grid point
            best, best_value = i, value
    return best


class Tuned(Solver):
    """A registered solver at its best over a grid: runs it once per grid point on the instance and keeps the run
    whose final objective is lowest (the choice uses only f, never x*, so it is fair where the truth is unknown).

    Parameters
    ----------
    solver : str
        Registry name of the base solver (e.g. ``"iht"``). The instance is named ``"<solver>_tuned"``: that is
        its ``solver`` column in the results, so the tuned baseline is its own row/colour in every comparison.
    grid : mapping of str to list
        Base-solver parameter name -> values to try. The grid is the Cartesian product, enumerated in the order
        of ``itertools.product`` (the first key varies slowest); keep it small: every point is a full run.
        ``time_budget`` cannot be tuned (it is the budget of the whole grid, see below).
    params : mapping, optional
        Fixed parameters of the base solver (e.g. ``k``, ``max_iter``); the base solver's defaults otherwise.
        A parameter cannot be both fixed here and tuned in ``grid``.
    time_budget : float, optional
        Wall-clock budget of the whole grid in seconds: each of the G grid runs gets ``time_budget / G`` as its
        own ``time_budget``, so the tuned baseline gets the same total as any other solver given this budget
        (and the harness's hard deadline, computed from ``time_budget``, covers all its runs). None: no budget.

    Notes
    -----
    Choice. With runs r_1..r_G in grid order, the reported run is argmin_g f(x_T^(g)) over the runs whose status
    is not ``error`` or ``diverged`` and whose final objective is finite (over all runs when none qualifies);
    ties go to the first. Because f is the problem's own objective, the choice commutes with exact rescalings of
    the data (A → aA, y → by multiplies every f by b²), so a scale-free base solver gives a scale-free preset.

    Result. The winner's point, status, iteration count and trace, with the message prefixed by the grid and the
    chosen point (e.g. ``"tuned over step_scale in [0.5, 1, 1.5, 1.9]: best step_scale=1.5; "``).

    Time (equal-budget accounting). ``time_s`` of the result is the *sum* of the times of all G runs, T = Σ_g T_g:
    the tuned baseline paid for its grid. The winner's trace column ``time_s`` is multiplied by T / T_winner, so
    each iteration is charged the cost of one iteration of every grid point (the grid run in lockstep) and the
    last row reaches T; plots against time therefore show the tuned baseline at its true cost. (If the winner's
    own time is 0, the other runs' time is added to every row instead.)

    Callbacks. They are called only for the winner's rows, after the choice (a replay, with the rows' scaled
    times), with this `Tuned` as the solver; the winning base solver is ``best_solver_`` and its grid point
    ``best_point_``. The states are kept during the runs only when callbacks are given.

    ``needs_k``, ``requires``, ``recovery_tol``, ``invariances`` and ``references`` are the base solver's, and
    ``skip`` delegates to it. `get_params` (the ``s_<param>`` columns) gives ``solver``, ``grid``, ``params`` and
    ``time_budget``; the result store writes the mappings as JSON strings (`experiments.store.results.tidy_rows`).
    """

    def __init__(self, *, solver: str, grid: Mapping[str, Sequence[Any]], params: Mapping[str, Any] | None = None,
                 time_budget: float | None = None):
        self.solver = solver
        self.grid = grid
        self.params = params
        self.time_budget = time_budget
        self.name = f"{solver}_tuned"  # instance-level: the class is not registered under one name
        base = REGISTRY.get(solver) if isinstance(solver, str) else None
        if base is not None and not issubclass(base, Tuned):  # metadata follows the base solver
            self.needs_k, self.requires, self.recovery_tol = base.needs_k, base.requires, base.recovery_tol
            self.invariances, self.references = base.invariances, base.references

    # ------------------------------------------------------------------------------------ configuration
    def base_class(self) -> type[Solver]:
        """The registered class of the base solver; `SolverConfigError` if there is none (or it is a tuned one)."""
        base = REGISTRY.get(self.solver) if isinstance(self.solver, str) else None
        if base is None:
            raise SolverConfigError(f"solver={self.solver!r} is not a registered solver; choose one of "
                                    f"{', '.join(sorted(n for n, c in REGISTRY.items() if not issubclass(c, Tuned)))}")
        if issubclass(base, Tuned):
            raise SolverConfigError(f"solver={self.solver!r} is already tuned; tune its base solver instead")
        return base

    def grid_values(self) -> dict[str, list[Any]]:
        """The grid as parameter -> list of values, checked against the base solver's parameters."""
        base = self.base_class()
        if not isinstance(self.grid, Mapping) or not self.grid:
            raise SolverConfigError(f"grid={self.grid!r} must be a non-empty mapping of {self.solver} parameters "
                                    "to lists of values")
        known = base.param_names()
        grid: dict[str, list[Any]] = {}
        for key, values in self.grid.items():
            if key not in known:
                raise SolverConfigError(f"grid key {key!r} is not a parameter of {self.solver}; "
                                        f"known: {', '.join(known)}")
            if key == "time_budget":
                raise SolverConfigError("grid key 'time_budget' cannot be tuned: time_budget is the budget of "
                                        "the whole grid")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
                raise SolverConfigError(f"grid.{key}={values!r} must be a non-empty list of values")
            grid[key] = list(values)
        return grid

    def fixed_params(self) -> dict[str, Any]:
        """The base solver's fixed parameters (everything not tuned), checked against its parameters."""
        base = self.base_class()
        if self.params is None:
            return {}
        if not isinstance(self.params, Mapping):
            raise SolverConfigError(f"params={self.params!r} must be a mapping of {self.solver} parameters")
        known = base.param_names()
        for key in self.params:
            if key not in known:
                raise SolverConfigError(f"params key {key!r} is not a parameter of {self.solver}; "
                                        f"known: {', '.join(known)}")
            if key == "time_budget":
                raise SolverConfigError("params.time_budget: give the budget of the whole grid as time_budget")
            if key in (self.grid if isinstance(self.grid, Mapping) else {}):
                raise SolverConfigError(f"{key} is both fixed in params and tuned in grid; remove one")
        return dict(self.params)

    def grid_points(self) -> list[dict[str, Any]]:
        """The grid's points in order (Cartesian product; the first key varies slowest)."""
        grid = self.grid_values()
        return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]

    def grid_description(self) -> str:
        """E.g. ``"step_scale in [0.5, 1, 1.5, 1.9]"``; several keys are joined by `` x ``."""
        return " x ".join(f"{key} in [{', '.join(_format_value(v) for v in values)}]"
                          for key, values in self.grid_values().items())

    def candidates(self) -> list[tuple[dict[str, Any], Solver]]:
        """One base solver per grid point, in grid order: fixed parameters, the point, and the per-run share of
        the time budget."""
        base, fixed, points = self.base_class(), self.fixed_params(), self.grid_points()
        positive("time_budget", self.time_budget, allow_none=True, error=SolverConfigError)
        budget: dict[str, Any] = {}
        if "time_budget" in base.param_names():
            budget["time_budget"] = None if self.time_budget is None else self.time_budget / len(points)
        elif self.time_budget is not None:
            raise SolverConfigError(f"time_budget={self.time_budget}: {self.solver} takes no time budget")
        return [(point, base(**fixed, **point, **budget)) for point in points]

    def validate(self, problem: Problem) -> None:
        """Check the configuration and every grid point's solver against ``problem`` (one-line
        `SolverConfigError`, naming the grid point when the point's own solver refuses)."""
        self.candidates_ = self.candidates()
        for point, solver in self.candidates_:
            try:
                solver.validate(problem)
            except SolverConfigError as exc:
                raise SolverConfigError(f"{self.name} at {_format_point(point)}: {exc}") from None

    def skip(self, problem: Problem) -> tuple[bool, str]:
        """The base solver's answer (at the first grid point); configuration errors are left to `validate`."""
        try:
            _, solver = self.candidates()[0]
        except SolverConfigError:
            return False, ""
        return solver.skip(problem)

    # ------------------------------------------------------------------------------------------- running
    def run(self, problem: Problem, callbacks: Iterable[Callback] = ()) -> Result:
        """Run every grid point in order, keep the best by final objective, charge the whole grid's time."""
        self.validate(problem)
        callbacks = list(callbacks)
        results: list[Result] = []
        recorded: list[list[tuple[State, dict[str, Any]]]] = []
        for point, solver in self.candidates_:
            rows: list[tuple[State, dict[str, Any]]] = []
            recorder = [lambda _solver, state, row, rows=rows: rows.append((state, row))] if callbacks else []
            result = solver.run(problem, callbacks=recorder)
            log.debug("%s at %s: %s, f=%.6g, %.3g s", self.solver, _format_point(point), result.status,
                      _final_objective(result), result.time_s)
            results.append(result)
            recorded.append(rows)

        best = best_run(results)
        best_point, self.best_solver_ = self.candidates_[best]
        self.best_point_ = dict(best_point)
        winner = results[best]
        total_time = float(sum(result.time_s for result in results))
        scaled_rows = {id(row): self._charged(row, winner.time_s, total_time) for row in winner.trace}
        trace = [scaled_rows[id(row)] for row in winner.trace]
        for state, row in recorded[best]:
            for callback in callbacks:
                callback(self, state, scaled_rows[id(row)])

        excluded = [f"{_format_point(point)} {result.status}" for (point, _), result in zip(self.candidates_, results)
                    if not _usable(result)]
        note = f" (not chosen: {'; '.join(excluded)})" if excluded and _usable(winner) else ""
        if not _usable(winner):
            note = " (no grid point gave a usable run)"
        prefix = f"tuned over {self.grid_description()}: best {_format_point(best_point)}{note}"
        log.debug("%s: best %s of %d runs (f=%.6g), %.3g s in all", self.name, _format_point(best_point),
                 len(results), _final_objective(winner), total_time)
        message = f"{prefix}; {winner.message}" if winner.message else prefix
        return Result(x=winner.x, status=winner.status, message=message, n_iter=winner.n_iter,
                      time_s=total_time, trace=trace)

    @staticmethod
    def _charged(row: dict[str, Any], own_time: float, total_time: float) -> dict[str, Any]:
        """A copy of a trace row whose ``time_s`` is charged the whole grid: scaled by total/own (see Notes)."""
        charged = dict(row)
        if own_time > 0:
            # min: row time ≤ own time, so the product is ≤ total but for one rounding
            charged["time_s"] = min(row["time_s"] * (total_time / own_time), total_time)
        else:
            charged["time_s"] = row["time_s"] + total_time
        return charged



class TunedPreset(Tuned):
    """A `Tuned` whose base solver is fixed by the class and whose constructor takes the base solver's own
    parameters as flat keywords, next to ``grid`` (so its YAML, overrides and ``s_<param>`` columns are those of
    the base solver plus ``s_grid``).

    Parameters
    ----------
    grid : mapping of str to list, optional
        As in `Tuned`; None uses the class's ``default_grid``.
    **base_params
        Every parameter of the base solver. A tuned parameter must be None (the grid sets it); any other None
        means the base solver's default; ``time_budget`` is the budget of the whole grid (see `Tuned`).
        Unset keywords take the base solver's defaults (None for tuned ones).
    """

    base_solver: ClassVar[str]
    default_grid: ClassVar[dict[str, list[Any]]]

    @classmethod
    def param_names(cls) -> list[str]:
        """``grid`` and the base solver's parameters (the YAML keys of ``conf/solver/<name>.yaml``)."""
        return ["grid", *REGISTRY[cls.base_solver].param_names()]

    @classmethod
    def base_defaults(cls) -> dict[str, Any]:
        """The base solver's keyword defaults, collected along its MRO like `Solver.param_names`."""
        defaults: dict[str, Any] = {}
        for klass in REGISTRY[cls.base_solver].__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.kind is p.KEYWORD_ONLY and p.name not in defaults:
                    defaults[p.name] = None if p.default is p.empty else p.default
        return defaults

    def __init__(self, *, grid: Mapping[str, Sequence[Any]] | None = None, **base_params: Any):
        names = type(self).param_names()
        unknown = sorted(set(base_params) - set(names))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}")
        grid = copy.deepcopy(self.default_grid) if grid is None else grid
        super().__init__(solver=self.base_solver, grid=grid, params=None,
                         time_budget=base_params.get("time_budget"))
        tuned = set(grid) if isinstance(grid, Mapping) else set()
        for name, default in self.base_defaults().items():
            setattr(self, name, base_params.get(name, None if name in tuned else default))

    def fixed_params(self) -> dict[str, Any]:
        """The flat keywords that are set (not None), except the tuned ones and ``time_budget``."""
        grid = self.grid_values()
        fixed: dict[str, Any] = {}
        for name in REGISTRY[self.base_solver].param_names():
            value = getattr(self, name)
            if name == "time_budget":
                continue
            if name in grid:
                if value is not None:
                    raise SolverConfigError(f"{name}={value} is tuned over grid.{name}; set {name} to null or "
                                            f"remove it from the grid")
            elif value is not None:
                fixed[name] = value
        return fixed


def _preset(class_name: str, base_solver: str, default_grid: dict[str, list[Any]], why: str) -> type[TunedPreset]:
    """A registered `TunedPreset` named ``<base_solver>_tuned`` with the base solver's class-level metadata."""
    base = REGISTRY[base_solver]
    grid_text = " x ".join(f"{k} in {v}" for k, v in default_grid.items())
    doc = (f"`{base.__name__}` tuned per instance over {grid_text} (the lowest final objective wins; the time "
           f"reported is that of the whole grid).\n\n    {why}\n\n    See `Tuned` and `TunedPreset`.")
    namespace = dict(name=f"{base_solver}_tuned", base_solver=base_solver, default_grid=default_grid,
                     needs_k=base.needs_k, requires=base.requires, recovery_tol=base.recovery_tol,
                     invariances=base.invariances, references=base.references, __module__=__name__,
                     __qualname__=class_name, __doc__=doc)
    return type(class_name, (TunedPreset,), namespace)  # registered by Solver.__init_subclass__


IHTTuned = _preset("IHTTuned", "iht", {"step_scale": [0.5, 1.0, 1.5, 1.9]},
                   "IHT's step is step_scale / L; 2 / L is the stability limit of the gradient step.")
HTPTuned = _preset("HTPTuned", "htp", {"step_scale": [0.5, 1.0, 1.5, 1.9]},
                   "HTP's support-selection step is mu = step_scale * d / ||A||_F^2 when step_size is null: "
                   "Foucart's mu = 1 in units of the mean squared column norm (scale-free), tried around 1.")
NIHTTuned = _preset("NIHTTuned", "niht", {"c": [0.01, 0.1], "kappa": [2.0, 4.0]},
                    "Every point satisfies NIHT's kappa * (1 - c) > 1.")
TopkIOBSTuned = _preset("TopkIOBSTuned", "topk_iobs", {"newton_step": [0.25, 0.5, 1.0]},
                        "gamma = 1 is the exact Newton step; shorter steps are the damped variants.")
