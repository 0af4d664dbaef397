"""Shared solver mechanics: the registry, the iteration loop, stopping, timing, divergence and the trace.

A solver is a small class whose ``__init__`` only stores parameters. Iterative solvers implement
``init(problem) -> State`` and ``step(problem, state) -> State``; `IterativeSolver.run` owns everything else,
once, for all of them. Non-iterative solvers (convex programs) implement ``solve(problem) -> x`` and inherit
`DirectSolver.run`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Protocol

import numpy as np
import pandas as pd

from problems.base import Problem
from problems.validation import integer, number, positive
from solvers._kernels import robust_norm

log = logging.getLogger(__name__)

STATUSES = ("ok", "max_iter", "stalled", "diverged", "timeout", "error")

#: name -> solver class; filled by ``Solver.__init_subclass__`` for every class that sets ``name``.
REGISTRY: dict[str, type[Solver]] = {}


class SolverConfigError(ValueError):
    """A solver parameter is invalid for the solver or for the problem; raised before any iteration."""


def support_of(x: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Indices of the entries of ``x`` that are nonzero, relative to ‖x‖_∞ (exact zeros for thresholded
    iterates; tiny solver noise of convex solvers does not count)."""
    scale = np.max(np.abs(x), initial=0.0)
    return np.flatnonzero(np.abs(x) > rtol * scale) if scale > 0 else np.array([], dtype=int)


@dataclass
class State:
    """What an iteration hands to the next: the iterate, the step size it used and solver-private data.

    ``finished`` is a solver's own stopping rule (e.g. OMP after k atoms, HTP when the support repeats): a
    step that sets it ends the run with status ``ok`` and that message. A step that knows it cannot move
    returns the state it was given (the same ``x`` object) with ``finished`` set; no row is recorded for it,
    so traces never end with a repeated point.
    """

    x: np.ndarray
    step_size: float = float("nan")
    cache: dict[str, Any] = field(default_factory=dict)
    finished: str = ""


@dataclass
class Result:
    """The outcome of one run: final point, status, and one trace row per recorded iteration."""

    x: np.ndarray
    status: str
    message: str
    n_iter: int
    time_s: float
    trace: list[dict[str, Any]]

    def frame(self) -> pd.DataFrame:
        """The trace as a DataFrame (one row per iteration)."""
        return pd.DataFrame(self.trace)


class Callback(Protocol):
    """Called after every recorded iteration with the solver, the new state and the trace row (a dict it may
    complete, e.g. with ``bound`` and ``bound_note``: `solvers.bounds.BoundTracker` observes runs this way).

    An optional ``start(solver, state, row)`` method is called once with the starting point's row (iteration
    0) before the first step. Callbacks run outside the solver's clock.
    """

    def __call__(self, solver: Solver, state: State, row: dict[str, Any]) -> None: ...


class Trace:
    """Per-iteration metrics of an iterate against the problem's ``x_star`` (the harness's, not the solver's,
    knowledge of the truth)."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.norm_star = robust_norm(problem.x_star)
        self.rows: list[dict[str, Any]] = []

    def record(self, iteration: int, x: np.ndarray, time_s: float, step_size: float = float("nan"),
               bound: float = float("nan"), bound_note: str = "") -> dict[str, Any]:
        support = support_of(x)
        true_support = self.problem.true_support
        distance = robust_norm(x - self.problem.x_star)  # NaN when the truth is unknown
        with np.errstate(all="ignore"):
            objective = float(self.problem.objective(x))
        row = dict(
            iteration=iteration,
            time_s=time_s,
            objective=objective,
            distance=distance,
            rel_error=distance / self.norm_star if self.norm_star > 0 else distance,
            support_recall=(np.intersect1d(support, true_support).size / true_support.size
                            if true_support.size else (1.0 if self.problem.has_truth else float("nan"))),
            support_size=int(support.size),
            step_size=float(step_size),
            bound=float(bound),
            bound_note=bound_note,
        )
        self.rows.append(row)
        return row

    @property
    def first_distance(self) -> float:
        return self.rows[0]["distance"] if self.rows else float("nan")


class Solver:
    """Base of every solver: metadata, parameter introspection and validation.

    Class attributes
    ----------------
    name : str
        Registry key and the ``solver`` column of results.
    references : tuple of str
        Papers the implementation follows.
    needs_k : bool
        Whether the solver takes a sparsity budget ``k`` (its output then has at most k nonzeros).
    requires : frozenset of str
        Problem capabilities the solver relies on (e.g. ``"least_squares"``).
    recovery_tol : float or None
        Relative error the method reaches on an easy noiseless instance (the registry-wide known-answer
        test uses it); None for estimators that are biased by design (e.g. the Lasso).
    invariances : frozenset of str
        Rescalings of the data that leave the selected support unchanged, checked registry-wide
        (`tests/test_scale_invariance.py`): ``"global"`` (A → aA, y → by; every default must be scale-free)
        and ``"columns"`` (A → AD for a positive diagonal D; e.g. the best subset).
    """

    name: ClassVar[str]
    references: ClassVar[tuple[str, ...]] = ()
    needs_k: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset()
    recovery_tol: ClassVar[float | None] = 1e-6
    #: Bumped when a change alters the solver's results for the same configuration (a bug fix, not a speed-up):
    #: it enters the run id (`experiments.execution.runner.identity`), so a rerun computes results that the earlier
    #: code stored instead of reusing them. 0 (never revised) leaves the solver's run ids as they always were.
    revision: ClassVar[int] = 0
    invariances: ClassVar[frozenset[str]] = frozenset({"global"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            REGISTRY[cls.name] = cls

    @classmethod
    def param_names(cls) -> list[str]:
        """Keyword parameters of ``__init__`` along the MRO (the YAML keys of ``conf/solver/<name>.yaml``)."""
        return list(_keyword_parameters(cls))

    def get_params(self) -> dict[str, Any]:
        """The stored parameters, as given (data-dependent values live in attributes ending in ``_``)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def skip(self, problem: Problem) -> tuple[bool, str]:
        """Whether this solver cannot handle ``problem``, and why."""
        missing = self.requires - problem.capabilities
        if missing:
            return True, f"solver {self.name} needs a problem with {', '.join(sorted(missing))} structure"
        return False, ""

    def validate(self, problem: Problem) -> None:
        """Check parameters against the problem; raise `SolverConfigError` with a one-line message."""
        skip, reason = self.skip(problem)
        if skip:
            raise SolverConfigError(reason)

    def sparsity(self, problem: Problem) -> int:
        """The budget k for this problem: the ``k`` parameter, or k* of the problem when it is None."""
        k = getattr(self, "k", None)
        k = problem.k_star if k is None else k
        return integer("k", k, low=1, high=problem.d, what=f"d={problem.d}", error=SolverConfigError)

    def run(self, problem: Problem, callbacks: Iterable[Callback] = ()) -> Result:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


@functools.cache
def _keyword_parameters(cls: type) -> tuple[str, ...]:
    """`Solver.param_names` of a class, read once per class: a grid asks it for every one of its thousands of
    trials, and ``inspect.signature`` costs ~0.1 ms."""
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.name not in names:
                names.append(p.name)
    return tuple(names)


def _finish(problem: Problem, trace: Trace, x: np.ndarray | None, status: str, message: str,
            n_iter: int, elapsed: float) -> Result:
    """Package a run; a run that failed before producing a point records a NaN point at iteration 0."""
    if x is None:
        x = np.full(problem.d, np.nan)
    if not trace.rows:
        trace.record(0, x, elapsed)
    if status == "ok":
        status, message = _checked_verdict(problem, trace, x, message)
    if status == "error":
        log.warning("solver failed: %s", message)
    return Result(x=x, status=status, message=message, n_iter=n_iter, time_s=elapsed, trace=trace.rows)


def _checked_verdict(problem: Problem, trace: Trace, x: np.ndarray, message: str) -> tuple[str, str]:
    """Status ``ok`` only when the numbers back it: a final point or objective that is not finite is
    ``diverged`` (whatever rule stopped the run), and a run that stopped where the objective is not below its
    value at the start keeps ``ok`` but says so in ``message`` (e.g. steps that underflow on data scaled by
    1e-300 "converge" at x_0)."""
    final = trace.rows[-1]["objective"]
    if not np.all(np.isfinite(x)) or not np.isfinite(final):
        return "diverged", (f"the final point or its objective ({final:.3g}) is not finite"
                            + (f" ({message})" if message else "") + "; check the scale of the data")
    with np.errstate(all="ignore"):
        start = trace.rows[0]["objective"] if len(trace.rows) > 1 else float(problem.objective(problem.x0))
    if np.isfinite(start) and start > 0 and not final < start:
        note = f"the objective did not decrease from x_0 (f = {start:.6g}); check the scale of A and y"
        return "ok", f"{message}; {note}" if message else note
    return "ok", message


class CycleDetector:
    """Detects that a deterministic iteration has come back to a point it visited before (not the previous one):
    from then on it repeats the same cycle until ``max_iter`` — e.g. HTP with a step too long for the scale of
    A alternates between two supports — and the last iterate is an arbitrary member of the cycle.

    Points are compared bit for bit, through a 128-bit digest of their bytes (O(d) per iteration, no copy
    kept): a cycle of a deterministic map repeats its points exactly, so no tolerance is involved. The best
    point visited (lowest objective) is kept, to be returned instead of the last one.
    """

    def __init__(self, x0: np.ndarray, objective: float):
        self.seen: dict[bytes, int] = {}
        self.best_x, self.best_objective, self.best_iteration = x0, np.inf, 0
        self.visit(x0, objective, 0)

    @staticmethod
    def digest(x: np.ndarray) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(x).view(np.uint8), digest_size=16).digest()

    def visit(self, x: np.ndarray, objective: float, iteration: int, key: bytes | None = None) -> None:
        """Remember x_t (``key``: its digest, when `repeat_of` already computed it)."""
        self.seen.setdefault(self.digest(x) if key is None else key, iteration)
        if objective < self.best_objective:
            self.best_x, self.best_objective, self.best_iteration = x, objective, iteration

    def repeat_of(self, x: np.ndarray, iteration: int) -> tuple[int | None, bytes]:
        """The iteration s < t − 1 whose point equals ``x`` (x_t), or None; and the digest of ``x``."""
        key = self.digest(x)
        earlier = self.seen.get(key)
        return (earlier if earlier is not None and earlier < iteration - 1 else None), key

    def best_state(self, state: State, repeat: int, iteration: int) -> tuple[State, str]:
        """The state to end on (the best point visited) and the message naming the cycle."""
        message = (f"the iterates cycle (x_{iteration} = x_{repeat}, period {iteration - repeat}): stopped at the "
                   f"best point visited (iteration {self.best_iteration}, objective {self.best_objective:.6g})")
        return State(x=self.best_x, step_size=state.step_size, cache=state.cache), message


def stalled(objective: Any, earlier: Any, rate: float, window: int) -> Any:
    """f(x_t) > ρ^{2w}·f(x_{t−w}) (`IterativeSolver`'s ``stall_window``), elementwise on arrays; the one
    formula of the one-trial and batched loops, so both decide alike bit for bit."""
    return objective > rate ** (2 * window) * earlier


def stall_message(objective: float, earlier: float, rate: float, window: int) -> str:
    return (f"stalled: the objective fell by less than a factor {rate ** (2 * window):.4g} in {window} iterations "
            f"({earlier:.6g} -> {objective:.6g}; residual rate above stall_rate={rate:g})")


class IterativeSolver(Solver):
    """An iterative method x_{t+1} = step(x_t); the loop, stopping rules and trace live here, once.

    Parameters
    ----------
    k : int, optional
        Sparsity budget; ``None`` uses the problem's k*.
    max_iter : int
        Maximum number of iterations.
    tol : float
        Stop when ‖x_{t+1} − x_t‖ ≤ tol·‖x_t‖ (status ``ok``), a test that does not change when A, y (and so
        x) are rescaled; an iterate that stays exactly where it is (‖x_{t+1} − x_t‖ = 0, e.g. at x = 0)
        also stops. (An absolute floor such as tol·max(‖x_t‖, 1) would declare every step of a problem whose
        solution has norm 1e-300 converged.)
    time_budget : float, optional
        Wall-clock budget in seconds for the iterations (status ``timeout`` when exceeded).
    divergence_factor : float
        Status ``diverged`` when ‖x_t − x*‖ exceeds this factor times max(‖x_0 − x*‖, ‖x*‖, 1), or on NaN/inf.
    stall_window : int, optional
        Status ``stalled`` when, after at least this many iterations w, the objective has not fallen below
        ``stall_rate``^(2w) times its value w iterations earlier: f(x_t) > ρ^{2w}·f(x_{t−w}). For least squares
        (f = ½‖r‖²) this is Blanchard & Tanner's rule for NIHT — the average convergence rate of the residual
        over the window, (‖r_t‖/‖r_{t−w}‖)^{1/w}, exceeds ρ (GAGA, "Performance comparisons of greedy algorithms
        in compressed sensing", 2015: w = 15, ρ = 0.999), for comparisons with GAGA's numbers. It ends failing
        trials long before ``max_iter``, but it also ends trials that would have succeeded after a plateau, so it
        moves a phase transition: on the n = 200 diagram (15 x 15 cells, 20 trials, w = 15, ρ = 0.999) it cut IHT's
        wall time from 38 s to 23 s and CoSaMP's from 107 s to 27 s, and lost 16% of IHT's successes (947 → 794)
        and 4% of CoSaMP's (1573 → 1514), all near the transition (README, "Stopping failing trials early").
        Ratios only, so the rule does not depend on the scale of A or y; it assumes f ≥ 0 (every loss here).
        None (default): off.
    stall_rate : float
        ρ ∈ (0, 1) of ``stall_window``.
    """

    #: Whether x_{t+1} is a function of x_t alone (not of a random draw), so that x_t = x_s for some s < t − 1
    #: means the iterates cycle for ever (`CycleDetector`); stochastic solvers set it to False.
    deterministic: ClassVar[bool] = True

    def __init__(self, *, k: int | None = None, max_iter: int = 500, tol: float = 1e-10,
                 time_budget: float | None = None, divergence_factor: float = 1e8, stall_window: int | None = None,
                 stall_rate: float = 0.999):
        self.k = k
        self.max_iter = max_iter
        self.tol = tol
        self.time_budget = time_budget
        self.divergence_factor = divergence_factor
        self.stall_window = stall_window
        self.stall_rate = stall_rate

    def init(self, problem: Problem) -> State:
        """The state before the first iteration (x_0 = problem.x0 by default)."""
        return State(x=np.array(problem.x0, copy=True))

    def step(self, problem: Problem, state: State) -> State:
        """One iteration."""
        raise NotImplementedError

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        integer("max_iter", self.max_iter, low=1, error=SolverConfigError)
        positive("tol", self.tol, error=SolverConfigError)
        positive("time_budget", self.time_budget, allow_none=True, error=SolverConfigError)
        positive("divergence_factor", self.divergence_factor, error=SolverConfigError)
        if self.stall_window is not None:
            integer("stall_window", self.stall_window, low=1, error=SolverConfigError)
        number("stall_rate", self.stall_rate, low=0.0, high=1.0, strict_low=True, strict_high=True,
               error=SolverConfigError)
        if self.needs_k:
            self.k_ = self.sparsity(problem)

    def run(self, problem: Problem, callbacks: Iterable[Callback] = ()) -> Result:
        """Iterate until tolerance, ``max_iter``, the time budget, divergence or an exception.

        Timing counts only ``init`` and ``step``; the trace metrics are computed outside the clock.
        Exceptions raised while iterating become status ``error`` with the message; invalid parameters
        raise `SolverConfigError` before anything runs.
        """
        self.validate(problem)
        trace = Trace(problem)
        elapsed = 0.0
        tic = time.perf_counter()
        try:
            state = self.init(problem)
        except Exception as exc:  # a fault is a result row, never a hole in the sweep
            return _finish(problem, trace, None, "error", f"{type(exc).__name__}: {exc}", 0, 0.0)
        elapsed += time.perf_counter() - tic
        trace.record(0, state.x, elapsed)
        callbacks = list(callbacks)
        for callback in callbacks:
            start = getattr(callback, "start", None)
            if start is not None:
                start(self, state, trace.rows[0])
        blowup = self.divergence_factor * np.nanmax([trace.first_distance, trace.norm_star, 1.0])
        cycle = CycleDetector(state.x, trace.rows[-1]["objective"]) if self.deterministic else None
        status, message, iteration = "max_iter", "", 0
        for iteration in range(1, self.max_iter + 1):
            previous = state.x
            tic = time.perf_counter()
            try:
                state = self.step(problem, state)
            except Exception as exc:
                status, message = "error", f"{type(exc).__name__}: {exc}"
                break
            elapsed += time.perf_counter() - tic
            if state.finished and state.x is previous:  # the solver's own rule: nothing new to record
                status, message, iteration = "ok", state.finished, iteration - 1
                break
            repeat, key = cycle.repeat_of(state.x, iteration) if cycle is not None else (None, None)
            if repeat is not None:  # a cycle: end on the best point visited (recorded unless it is the last)
                state, message = cycle.best_state(state, repeat, iteration)
                if state.x is previous:
                    status, iteration = "ok", iteration - 1
                    break
            row = trace.record(iteration, state.x, elapsed, state.step_size)
            for callback in callbacks:
                callback(self, state, row)
            if repeat is not None:
                status = "ok"
                break
            if cycle is not None:
                cycle.visit(state.x, row["objective"], iteration, key)
            earlier = (trace.rows[iteration - self.stall_window]["objective"]
                       if self.stall_window is not None and iteration >= self.stall_window else None)
            status, message = self._stopping(state.x, previous, row, blowup, elapsed, earlier)
            if status == "running" and state.finished:
                status, message = "ok", state.finished
            if status != "running":
                break
        else:
            status, message = "max_iter", f"reached max_iter={self.max_iter}"
        return _finish(problem, trace, state.x, status, message, iteration, elapsed)

    def _stopping(self, x: np.ndarray, previous: np.ndarray, row: dict[str, Any], blowup: float,
                  elapsed: float, earlier: float | None = None) -> tuple[str, str]:
        """The loop's rules in order; ``earlier`` is f(x_{t−w}) for ``stall_window`` w (None: too early or off)."""
        if not np.all(np.isfinite(x)) or not np.isfinite(row["objective"]):
            return "diverged", "iterate or objective is not finite"
        if row["distance"] > blowup:
            return "diverged", f"error {row['distance']:.3g} exceeded {self.divergence_factor:g} x its scale"
        change = robust_norm(x - previous)
        if change <= self.tol * robust_norm(previous):
            return "ok", f"converged: step length {change:.3g} below tol={self.tol:g}"
        if earlier is not None and stalled(row["objective"], earlier, self.stall_rate, self.stall_window):
            return "stalled", stall_message(row["objective"], earlier, self.stall_rate, self.stall_window)
        if self.time_budget is not None and elapsed > self.time_budget:
            return "timeout", f"time budget of {self.time_budget:g} s exceeded"
        return "running", ""


class DirectSolver(Solver):
    """A non-iterative solver (e.g. a convex program): ``solve(problem) -> x``; one trace row, the final point.

    Parameters
    ----------
    time_budget : float, optional
        Seconds; a solve that takes longer is reported with status ``timeout`` (its point is still recorded).
    """

    needs_k: ClassVar[bool] = False

    def __init__(self, *, time_budget: float | None = None):
        self.time_budget = time_budget

    def solve(self, problem: Problem) -> tuple[np.ndarray, int] | tuple[np.ndarray, int, str]:
        """Return the solution and the number of iterations the underlying solver reports (0 if unknown),
        optionally followed by a note on how it was found (the ``message`` of an ``ok`` row: e.g. which of two
        methods answered, so that a sweep can count them)."""
        raise NotImplementedError

    def validate(self, problem: Problem) -> None:
        super().validate(problem)
        positive("time_budget", self.time_budget, allow_none=True, error=SolverConfigError)

    def run(self, problem: Problem, callbacks: Iterable[Callback] = ()) -> Result:
        self.validate(problem)
        trace = Trace(problem)
        tic = time.perf_counter()
        try:
            x, n_iter, *note = self.solve(problem)
        except Exception as exc:
            return _finish(problem, trace, None, "error", f"{type(exc).__name__}: {exc}", 0,
                                           time.perf_counter() - tic)
        elapsed = time.perf_counter() - tic
        row = trace.record(n_iter, x, elapsed)
        for callback in callbacks:
            callback(self, State(x=x), row)
        if not np.all(np.isfinite(x)):
            status, message = "diverged", "solution is not finite"
        elif self.time_budget is not None and elapsed > self.time_budget:
            status, message = "timeout", f"time budget of {self.time_budget:g} s exceeded"
        else:
            status, message = "ok", note[0] if note else ""
        return _finish(problem, trace, x, status, message, n_iter, elapsed)


def make_solver(name: str, **params: Any) -> Solver:
    """Instantiate a registered solver by name (the Python-side twin of ``conf/solver/<name>.yaml``)."""
    if name not in REGISTRY:
        raise ValueError(f"solver={name!r} is unknown; choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**params)

