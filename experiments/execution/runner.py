"""Job mechanics shared by every experiment kind: build a problem and a solver from their config nodes,
run, and store the tidy rows under a stable run id (skipping runs already stored)."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from experiments.execution import interrupt, preflight
from experiments.execution.guard import hard_deadline, run_with_deadline
from experiments.store.reference import ORACLE_MODES, reference_for
from experiments.store.results import ResultStore, run_id, tidy_rows
from problems import validation
from problems.base import Problem
from solvers.base import Solver
from solvers.bounds import BoundTracker

log = logging.getLogger(__name__)


def resolved(node: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A config node as a plain, fully resolved dict."""
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def build(node: DictConfig | Mapping[str, Any], group: str, **extra: Any) -> Any:
    """Call the node's ``_target_`` with its keys (plus ``extra``), with one-line errors for bad config.

    Unknown keys and invalid values raise ``ValueError`` naming ``group.<key>``; Hydra's instantiate is not
    used because it wraps errors in multi-line exceptions.
    """
    params = resolved(node)
    target_path = params.pop("_target_", None)
    if not target_path:
        raise ValueError(f"{group} config has no _target_")
    try:
        target = get_method(target_path)
    except Exception:  # hydra raises a bare Exception subclass for unimportable paths
        raise ValueError(f"{group}._target_={target_path!r} cannot be imported") from None
    accepted = _accepted_keywords(target)
    unknown = sorted(set(params) - accepted) if accepted is not None else []
    if unknown:
        raise ValueError(f"{group}.{unknown[0]} is not a parameter of {target_path}; "
                         f"known: {', '.join(sorted(accepted - set(extra)))}")
    if not (inspect.isclass(target) and issubclass(target, Solver)):
        preflight.check_memory(params)  # a problem: refuse before allocating what the machine does not have
    return target(**params, **extra)


def identity(solver: Mapping[str, Any]) -> dict[str, Any]:
    """A solver config as it enters a run id: with ``revision`` added when its class was revised (`Solver.revision`
    > 0), so that results the earlier code stored are not reused; unchanged otherwise (a target that does not
    import is left to `build` to refuse)."""
    try:
        revision = getattr(get_method(str(solver.get("_target_"))), "revision", 0)
    except Exception:  # hydra raises a bare Exception subclass for unimportable paths
        revision = 0
    return {**solver, "revision": revision} if isinstance(revision, int) and revision > 0 else dict(solver)


@functools.cache
def _accepted_keywords(target: Any) -> frozenset[str] | None:
    """Keyword names ``target`` accepts (walking a solver class's MRO), or None if it takes **kwargs freely; read
    once per target (a grid builds thousands of instances of one)."""
    if inspect.isclass(target) and issubclass(target, Solver):
        return frozenset(target.param_names())
    parameters = inspect.signature(target).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters)


@dataclass(frozen=True)
class RunSpec:
    """Everything that identifies one run: the resolved problem and solver config and the seed.

    ``experiment`` is not part of the id: it is stored with the rows when this spec computes the run (the
    experiment that first computed it); a spec of another experiment with the same id reuses the stored run."""

    experiment: str
    problem: dict[str, Any]
    solver: dict[str, Any]
    seed: int
    #: Which runs get an ``objective_gap`` reference (`experiments.store.reference.ORACLE_MODES`); not part of the id.
    oracle: str = "auto"
    #: Seconds the branch-and-bound certificate of the reference may take (``oracle_time_limit``); not part of the id.
    oracle_time_limit: float = 60.0
    #: Hash of the content of the user files the problem reads (`preflight.content_digest`; "" for none): part
    #: of the id, so a rewritten file is a new run, never the stored results of the old one.
    inputs: str = ""

    @property
    def run_id(self) -> str:
        extra = {"inputs": self.inputs} if self.inputs else {}
        return run_id(self.problem, identity(self.solver), self.seed, **extra)

    @property
    def problem_key(self) -> dict[str, Any]:
        """The problem config with the content hash of its files: the key of caches derived from the instance."""
        return {**self.problem, "inputs": self.inputs} if self.inputs else dict(self.problem)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> RunSpec:
        seed = validation.seed(cfg.seed)
        oracle = str(cfg.get("oracle", "auto"))
        if oracle not in ORACLE_MODES:
            raise ValueError(f"oracle={oracle!r} must be one of {', '.join(ORACLE_MODES)}")
        time_limit = cfg.get("oracle_time_limit", 60.0)
        if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit >= 0:
            raise ValueError(f"oracle_time_limit={time_limit!r} must be a number of seconds >= 0 (0: no certificate)")
        problem, solver = resolved(cfg.problem), resolved(cfg.solver)
        preflight.check_integers(problem, "problem")
        preflight.check_integers(solver, "solver")
        return cls(experiment=str(cfg.experiment.name), problem=problem, solver=solver, seed=seed, oracle=oracle,
                   oracle_time_limit=float(time_limit), inputs=preflight.content_digest(problem))


class NotApplicable(Exception):
    """The solver cannot handle this kind of problem (e.g. CoSaMP on logistic regression): the sweep point is
    skipped with its reason, not treated as an error, so solver × problem grids need no hand-pruning."""


def prepare(spec: RunSpec) -> tuple[Problem, Solver]:
    """Build and cross-validate the problem and solver; every config error surfaces here, before any run.

    Raises `NotApplicable` when the solver declares it cannot handle the problem (`Solver.skip`).
    """
    preflight.check_memory(spec.problem, spec.solver)
    problem = build(spec.problem, "problem", seed=spec.seed)
    solver = build(spec.solver, "solver")
    skip, reason = solver.skip(problem)
    if skip:
        raise NotApplicable(reason)
    solver.validate(problem)
    return problem, solver


def validate(cfg: DictConfig, checked: set[str] | None = None) -> None:
    """Raise ``ValueError`` (one line) if the job of ``cfg`` cannot run; used by the sweeper on every point.

    Building problems is the costly part, so configurations already in ``checked`` (same problem and solver,
    any seed) are not built again.
    """
    spec = RunSpec.from_config(cfg)
    key = json.dumps([spec.problem, spec.solver], sort_keys=True, default=str)
    if checked is not None and key in checked:
        return
    try:
        prepare(spec)
    except NotApplicable as reason:
        log.info("will skip %s: %s", spec.solver.get("_target_"), reason)
    if checked is not None:
        checked.add(key)


def execute(spec: RunSpec, store: ResultStore, keep_solution: bool = False) -> pd.DataFrame:
    """Run one (problem, solver, seed) and store its rows; a stored run is read back instead of recomputed.

    A run read back keeps the ``experiment`` it was first computed under (whatever ``spec.experiment`` says):
    which sweep it belongs to is recorded by the job's manifest (`experiments.store.manifest`), not in the row.
    With ``keep_solution`` the final point is stored too (before the rows, so a stored run always has it).
    """
    rid = spec.run_id
    rows = store.read_valid(rid) if store.has(rid) and (not keep_solution or store.solution_path(rid).is_file()) \
        else None
    if rows is not None:  # an unreadable stored file was set aside with a warning: computed again below
        first = rows["experiment"].iloc[0] if len(rows) and "experiment" in rows else spec.experiment
        log.info("run %s already stored (computed under experiment %s), skipping", rid, first)
        return rows
    try:
        problem, solver = prepare(spec)
    except NotApplicable as reason:
        log.warning("skipped: %s", reason)
        return pd.DataFrame(columns=["run_id"])
    budget = getattr(solver, "time_budget", None)
    observers = [BoundTracker(problem)]  # the theory observes the run; the solver never sees it
    # A scheduler signal (time limit, scancel) ends the solve: stored as `interrupted`, which a rerun recomputes.
    result, stopped = interrupt.solve(problem, observers, lambda watchers: (
        run_with_deadline(solver, problem, hard_deadline(budget), watchers) if budget
        else solver.run(problem, callbacks=watchers)))
    reference = None if stopped else reference_for(
        problem, solver, mode=spec.oracle, root=store.root, problem_config=spec.problem_key, seed=spec.seed,
        time_limit=spec.oracle_time_limit)
    frame = tidy_rows(result.trace, run=rid, experiment=spec.experiment, problem=problem.name, solver=solver.name,
                      seed=spec.seed, problem_params=problem.params, solver_params=solver.get_params(),
                      status=result.status, message=result.message,
                      reference=(reference.objective, reference.how) if reference else None)
    if keep_solution:
        store.write_solution(rid, result.x)
    path = store.write(rid, frame)
    log.info("%s on %s (seed %d): %s after %d iterations, rel. error %.2e -> %s", solver.name, problem.name,
             spec.seed, result.status, result.n_iter, frame["rel_error"].iloc[-1], path)
    if stopped is not None:  # the job is being ended: stop here, the submitter reports it in one line
        raise interrupt.JobInterrupted(result.message) from stopped.original
    return frame


def results_root(cfg: DictConfig) -> Path:
    """The configured results root as an absolute path (an empty ``paths.results`` is refused: it would mean
    the current folder)."""
    raw = cfg.paths.results
    if raw is None or not str(raw).strip():
        raise ValueError("paths.results is empty: give a folder for the result store (default: results)")
    return Path(str(raw)).expanduser().resolve()
