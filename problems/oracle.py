"""The best k-subset oracle: the reference objective of problems whose sparse truth is unknown.

For real data (`problems.real_data`, `problems.user_data` without ``x_star``) there is no x* to measure an
iterate against, so results are compared with the best objective any k-sparse point reaches,

    f_best(k) = min_{|S| ≤ k} min_{supp x ⊆ S} f(x),

the optimum of the problem every solver attacks. `best_subset` returns it with the subset, the minimiser and
a label saying how far it can be trusted:

- ``"exact"``: every subset of size min(k, d) was scored, so f_best is certified (up to rounding, see below).
  Size exactly k is enough: adding a column never raises the least-squares optimum, nor that of any convex f
  (the old minimiser stays feasible).
- ``"exact"`` beyond enumeration (least squares only): the best k-subset mixed-integer program solved to a
  proved optimality gap ≤ 1e-9 by branch and bound (`problems.mixed_integer`, needs the optional gurobipy),
  warm-started from the heuristic below. ``Oracle.method`` says which certificate was used.
- ``"best known"``: too many subsets to enumerate and no certificate (no gurobipy, a model beyond its
  licence, or the time limit reached); the value is the best that greedy forward selection and the top-k of
  the unconstrained fit reach after a swap local search, or the branch-and-bound incumbent if better. It is
  an *upper* bound of f_best, not certified: a solver may legitimately find a lower objective.
  ``Oracle.lower_bound`` keeps the proved lower bound when branch and bound ran out of time (else −inf).

Least squares (``"least_squares"`` in ``problem.capabilities``: f = ½‖Ax − y‖²) is enumerated up to
``max_subsets`` subsets, scored in closed form; every other problem needs an iterative fit per subset and is
enumerated up to ``max_fits`` subsets. Results are cached per (problem, k, limits) with
`problems.conditioning.cached`, so the oracle of an instance is computed once per process.

Numerics of the least-squares path. Subsets are scored in the Gram form f(S) = ½(‖y‖² − b_Sᵀ G_SS⁺ b_S),
which squares the condition number of A_S; two safeguards keep the answer honest. (1) Rank deficiency: a
column whose angle to the span of the subset's earlier columns is below 1e-5 rad (sin² ≤ ``RANK_TOL``) is
treated as dependent and dropped, so a rank-deficient A_S is scored by the projection of y onto its span
(what the pseudo-inverse gives) instead of by a solve with a singular matrix; its x is 0 on dropped columns.
Consequence: a design with *nearly* collinear columns (angle < 1e-5 rad but nonzero) is treated as rank
deficient; its exact optimum could use such a pair with huge opposite coefficients to reach a slightly lower
objective. (2) Rounding: the ``TOP_CANDIDATES`` best subsets by the Gram form are refitted directly on A
(`numpy.linalg.lstsq`) and the winner is the best *direct* objective, which is what is returned. So near-ties
within rounding of the Gram form may resolve to either subset, but the value is always f at the returned x.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import scipy.linalg

from problems import mixed_integer
from problems.base import Problem, readonly
from problems.conditioning import cached
from problems.validation import integer, number

log = logging.getLogger(__name__)

EXACT, BEST_KNOWN = "exact", "best known"

#: Least-squares subsets scored before falling back to the heuristics (C(64, 5) = 7.6 million takes ~5 s on one core).
MAX_SUBSETS = 2_000_000
#: Iterative fits (one per subset) of a non-least-squares problem before falling back to the heuristics.
MAX_FITS = 5000

#: Floats held by one batch of the enumeration (32 MiB), which bounds its memory whatever C(d, k) is.
CHUNK_FLOATS = 1 << 22
#: A column whose squared distance to the span of the columns before it is at most this fraction of its squared
#: norm (sin² of its angle to that span, i.e. an angle below 1e-5 rad) counts as dependent and adds nothing.
#: The Gram form computes that sin² with an absolute error ~ machine epsilon, so smaller values are rounding.
RANK_TOL = 1e-10
#: Best Gram-form subsets re-scored directly (least squares on A_S), so rounding in the closed form cannot
#: decide between near-tied subsets.
TOP_CANDIDATES = 16
#: Columns (the best single-column fits) that seed one greedy forward selection each in the heuristic.
FORWARD_SEEDS = 16
#: Relative decrease of f a swap must bring to be taken (stops the local search at rounding level).
SWAP_TOL = 1e-12
#: Accepted swaps after which a local search stops (with a warning); never reached in practice.
MAX_SWAPS = 1000
#: Newton iterations of one restricted fit.
MAX_NEWTON = 200


@dataclass(frozen=True, eq=False)
class Oracle:
    """The best k-subset of a problem, as found by `best_subset`.

    Attributes
    ----------
    objective : float
        f_best = f(x), evaluated directly at ``x`` (never through a closed form).
    support : ndarray of int
        Sorted indices of the best subset S (|S| = min(k, d); x may be zero on some of them).
    x : ndarray of shape (d,)
        The minimiser on S, zero off S.
    how : {"exact", "best known"}
        ``"exact"``: certified (every subset scored, or branch and bound closed the gap); ``"best known"``:
        heuristic, an upper bound of f_best.
    subsets : int
        Number of subsets scored (least squares) or fitted (other problems) by enumeration or the heuristic.
    method : str
        How the value was found: ``"enumeration"``, ``"mixed-integer (gurobi x.y.z)"`` or ``"swap search"``.
    lower_bound : float
        A proved lower bound of f_best: ``objective`` when exact, the branch-and-bound bound when it ran out
        of time, −inf when nothing is proved.
    """

    objective: float
    support: np.ndarray
    x: np.ndarray
    how: str
    subsets: int
    method: str = "enumeration"
    lower_bound: float = -np.inf

    def __post_init__(self) -> None:
        support = np.array(self.support, dtype=np.intp, copy=True)
        support.setflags(write=False)
        object.__setattr__(self, "support", support)
        object.__setattr__(self, "x", readonly(self.x))


def best_subset(problem: Problem, k: int, max_subsets: int = MAX_SUBSETS, max_fits: int = MAX_FITS,
                time_limit: float = mixed_integer.TIME_LIMIT) -> Oracle:
    """f_best(k) = min_{|S| ≤ k} min_{supp x ⊆ S} f(x), certified when enumeration or branch and bound allows (cached).

    Parameters
    ----------
    problem : Problem
        Any problem; least squares (capability ``"least_squares"``) gets the closed-form enumeration.
    k : int
        Sparsity budget ≥ 1 (k ≥ d gives the unconstrained minimum over all d coordinates).
    max_subsets : int
        Enumerate when C(d, k) ≤ max_subsets; otherwise return the ``"best known"`` heuristic value.
    max_fits : int
        For problems without a closed form, enumerate only when C(d, k) ≤ min(max_subsets, max_fits) (each
        subset needs an iterative fit).
    time_limit : float
        Seconds the least-squares branch and bound (`problems.mixed_integer`) may take beyond ``max_subsets``;
        0 skips it (the heuristic value is returned as ``"best known"``).

    Returns
    -------
    Oracle
        The same object for the same (problem, k, max_subsets, max_fits): computed once per instance.

    Notes
    -----
    Least squares: f(S) = min_{supp x ⊆ S} ½‖Ax − y‖² = ½(‖y‖² − b_Sᵀ G_SS⁺ b_S), G = AᵀA, b = Aᵀy (see
    `_enumerate_least_squares`). Other problems: Newton's method on the coordinates of S (`_fit_on_support`);
    the result is exact when the restricted problems are convex (logistic regression, the polynomial-sensing
    problems), a best local value otherwise. Beyond the limits see `_heuristic_least_squares` and
    `_heuristic_fits`.
    """
    integer("k", k, low=1)
    integer("max_subsets", max_subsets, low=1)
    integer("max_fits", max_fits, low=1)
    number("time_limit", time_limit, low=0)
    key = ("best_subset", int(k), int(max_subsets), int(max_fits), float(time_limit))
    return cached(problem, key, lambda: _best_subset(problem, min(int(k), problem.d), int(max_subsets), int(max_fits),
                                                     float(time_limit)))


def _best_subset(problem: Problem, k: int, max_subsets: int, max_fits: int, time_limit: float) -> Oracle:
    start = time.perf_counter()
    count = math.comb(problem.d, k)
    if "least_squares" in problem.capabilities:
        if count <= max_subsets:
            oracle = _exact_least_squares(problem, k)
        else:
            oracle = _heuristic_least_squares(problem, k)
            if time_limit > 0:
                oracle = _certified_least_squares(problem, k, oracle, time_limit)
    elif count <= min(max_subsets, max_fits):
        oracle = _exact_by_fits(problem, k)
    else:
        oracle = _heuristic_fits(problem, k)
    log.debug("best %d-subset of %s (d=%d): f=%.12g, %s by %s, %d subsets scored in %.2f s", k, problem.name,
              problem.d, oracle.objective, oracle.how, oracle.method, oracle.subsets, time.perf_counter() - start)
    return oracle


# ------------------------------------------------------------------------------------------ least squares
def _append_column(W: np.ndarray, z: np.ndarray, l: np.ndarray, gram_row: np.ndarray, g_cc: np.ndarray,
                   b_c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of a batched Cholesky factorisation G_SS = LLᵀ, grown by one column c per batch entry.

    Each of the P entries carries W = L⁻¹G_{S,:} (shape (j, d')) and z = L⁻¹b_S (shape (j,)), so that
    b_Sᵀ G_SS⁻¹ b_S = ‖z‖². Appending c with l = L⁻¹G_{S,c} = W[:, c] gives the new diagonal entry
    δ = √(G_cc − ‖l‖²), the new row of W, (G_{c,:} − lᵀW)/δ, and the new entry of z, (b_c − lᵀz)/δ. When
    δ² ≤ RANK_TOL·G_cc the column lies (numerically) in the span of S: its row and entry are zero, which is
    the factorisation with c left out, and b_Sᵀ G_SS⁺ b_S (the pseudo-inverse) stays ‖z‖², so rank-deficient
    subsets are scored exactly as the projection of y onto the span of A_S.

    Returns the new row (P, d'), the new entry of z (P,) and whether c was independent (P,).
    """
    residual = g_cc - np.einsum("pj,pj->p", l, l)
    target = b_c - np.einsum("pj,pj->p", l, z)
    independent = residual > RANK_TOL * g_cc
    inverse_pivot = np.where(independent, 1.0 / np.sqrt(np.where(independent, residual, 1.0)), 0.0)
    row = (gram_row - np.einsum("pj,pjd->pd", l, W)) * inverse_pivot[:, None]
    return row, target * inverse_pivot, independent


def _projected_norms(G: np.ndarray, b: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """b_Sᵀ G_SS⁺ b_S = ‖P_S y‖² for every row S of ``subsets`` (shape (B, s)), in memory-bounded batches."""
    size = subsets.shape[1]
    out = np.empty(len(subsets))
    step = max(1, CHUNK_FLOATS // (size * size + size))
    for first in range(0, len(subsets), step):
        batch = subsets[first:first + step]
        blocks, rhs = G[batch[:, :, None], batch[:, None, :]], b[batch]
        W, z = np.zeros_like(blocks), np.zeros_like(rhs)
        for i in range(size):
            W[:, i], z[:, i], _ = _append_column(W[:, :i], z[:, :i], W[:, :i, i], blocks[:, i], blocks[:, i, i],
                                                 rhs[:, i])
        out[first:first + step] = np.einsum("pj,pj->p", z, z)
    return out


def _batches(iterable: Iterator[tuple[int, ...]], size: int, width: int) -> Iterator[np.ndarray]:
    """Arrays of shape (≤ size, width) holding successive tuples of ``iterable``."""
    while batch := list(itertools.islice(iterable, size)):
        yield np.fromiter(itertools.chain.from_iterable(batch), dtype=np.intp,
                          count=len(batch) * width).reshape(len(batch), width)


def _enumerate_least_squares(G: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """The ``TOP_CANDIDATES`` k-subsets with the largest ‖P_S y‖² (hence smallest f(S)), best first.

    Every k-subset S = {s_1 < ... < s_k} is a prefix R = {s_1, ..., s_{k−1}} (a (k−1)-subset of {0, ..., d−2})
    plus one column c > s_{k−1}. The prefixes are factorised in batches (`_append_column`, k − 1 steps, O(k²d)
    per prefix, all as whole-array operations), and then *every* child of a prefix is scored at once by the
    last step of the same recursion:

        ‖P_{R∪c} y‖² = ‖z_R‖² + (b_c − w_cᵀz_R)² / (G_cc − ‖w_c‖²),   w_c = L_R⁻¹G_{R,c} (column c of W_R),

    i.e. O(kd) per prefix for its up-to-d children. So the C(d, k) subsets cost C(d−1, k−1) small
    factorisations plus O(k) flops each, with no per-subset linear solve.
    """
    d, width = b.size, k - 1
    diag = np.diagonal(G)
    columns = np.arange(d)
    top_scores, top_sets = np.empty(0), np.empty((0, k), dtype=np.intp)
    prefixes = itertools.combinations(range(d - 1), width)
    for prefix in _batches(prefixes, max(1, CHUNK_FLOATS // (k * d)), width):
        P = len(prefix)
        W, z = np.zeros((P, width, d)), np.zeros((P, width))
        rows = np.arange(P)
        for i in range(width):
            c = prefix[:, i]
            W[:, i], z[:, i], _ = _append_column(W[:, :i], z[:, :i], W[rows, :i, c], G[c], diag[c], b[c])
        residual = diag - np.einsum("pjd,pjd->pd", W, W)
        target = b - np.einsum("pj,pjd->pd", z, W)
        independent = residual > RANK_TOL * diag
        scores = np.einsum("pj,pj->p", z, z)[:, None] + np.where(
            independent, target * target / np.where(independent, residual, 1.0), 0.0)
        last = prefix[:, -1] if width else np.full(P, -1)
        scores[columns[None, :] <= last[:, None]] = -np.inf  # each subset once: its largest index comes last
        flat = scores.ravel()
        keep = np.argpartition(flat, -TOP_CANDIDATES)[-TOP_CANDIDATES:] if flat.size > TOP_CANDIDATES else \
            np.arange(flat.size)
        keep = keep[np.isfinite(flat[keep])]
        parents, children = np.divmod(keep, d)
        top_scores = np.concatenate([top_scores, flat[keep]])
        top_sets = np.concatenate([top_sets, np.column_stack([prefix[parents], children])])
        order = np.argsort(-top_scores, kind="stable")[:TOP_CANDIDATES]
        top_scores, top_sets = top_scores[order], top_sets[order]
    return top_sets


def _gram_terms(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """G = AᵀA and b = Aᵀy of a least-squares problem."""
    A, y = problem.A, problem.y
    return A.T @ A, A.T @ y


def _independent_columns(G: np.ndarray, support: np.ndarray) -> np.ndarray:
    """The members of ``support`` that the Gram-form scoring keeps: those not (numerically, by RANK_TOL) in the
    span of the members before them."""
    size = support.size
    block = G[np.ix_(support, support)][None]
    W, z, keep = np.zeros((1, size, size)), np.zeros((1, size)), np.zeros(size, dtype=bool)
    for i in range(size):
        W[:, i], z[:, i], independent = _append_column(W[:, :i], z[:, :i], W[:, :i, i], block[:, i],
                                                       block[:, i, i], np.zeros(1))
        keep[i] = independent[0]
    return support[keep]


def _fit_least_squares(problem: Problem, G: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, float]:
    """The minimiser of ½‖Ax − y‖² on ``support`` and f there, computed directly from A (not the Gram form).

    Members the Gram-form scoring counts as dependent (`_independent_columns`) get x = 0 and the others a
    least-squares solve on A, so the returned point reaches the projection of y on span(A_S) that the subset
    was scored by, with no huge coefficients along rounding-level directions.
    """
    kept = _independent_columns(G, support)
    x = np.zeros(problem.d)
    x[kept] = np.linalg.lstsq(problem.A[:, kept], problem.y, rcond=None)[0]
    return x, problem.objective(x)


def _best_of(problem: Problem, G: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(support, x, f) of the candidate with the smallest direct objective; ties go to the lexicographically first."""
    fits = []
    for subset in candidates:
        support = np.sort(subset)
        x, f = _fit_least_squares(problem, G, support)
        fits.append((f, tuple(support), x))
    f, support, x = min(fits, key=lambda fit: (fit[0], fit[1]))
    return np.array(support, dtype=np.intp), x, f


def _exact_least_squares(problem: Problem, k: int) -> Oracle:
    """Enumerate all C(d, k) subsets (`_enumerate_least_squares`), re-score the best few directly.

    Timing (one core, OMP_NUM_THREADS=1, measured): the diabetes quadratic model (d = 64) takes 0.02 s for
    k = 3 (41 664 subsets), 0.4 s for k = 4 (635 376) and 4.7 s for k = 5 (7 624 512, above the default
    ``max_subsets``: pass ``max_subsets=8_000_000``), with ~300 MB peak memory.
    """
    G, b = _gram_terms(problem)
    support, x, f = _best_of(problem, G, _enumerate_least_squares(G, b, k))
    return Oracle(objective=f, support=support, x=x, how=EXACT, subsets=math.comb(problem.d, k), lower_bound=f)


def _single_column_gains(G: np.ndarray, b: np.ndarray) -> np.ndarray:
    """‖P_{c} y‖² = b_c²/G_cc for every column c (0 for a zero column)."""
    diag = np.diagonal(G)
    return np.where(diag > 0, b * b / np.where(diag > 0, diag, 1.0), 0.0)


def _forward_stepwise(G: np.ndarray, b: np.ndarray, k: int, first: int | None = None) -> np.ndarray:
    """Greedy forward selection: add, k times, the column that lowers the least-squares objective most
    (the first column forced to ``first`` when given)."""
    d = b.size
    diag = np.diagonal(G)
    W, z, chosen = np.zeros((1, 0, d)), np.zeros((1, 0)), []
    for step in range(k):
        residual = diag - np.einsum("pjd,pjd->d", W, W)
        target = b - np.einsum("pj,pjd->d", z, W)
        independent = residual > RANK_TOL * diag
        gain = np.where(independent, target * target / np.where(independent, residual, 1.0), 0.0)
        gain[chosen] = -np.inf
        c = int(np.argmax(gain)) if step or first is None else first
        row, entry, _ = _append_column(W, z, W[:, :, c], G[c][None], diag[c:c + 1], b[c:c + 1])
        W, z = np.concatenate([W, row[:, None]], axis=1), np.concatenate([z, entry[:, None]], axis=1)
        chosen.append(c)
    return np.sort(np.array(chosen, dtype=np.intp))


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Sorted indices of the k largest |values| (ties to the smaller index)."""
    return np.sort(np.argsort(-np.abs(values), kind="stable")[:k])


def _swaps(support: np.ndarray, d: int) -> np.ndarray:
    """Every subset obtained from ``support`` by swapping one member for one non-member, rows sorted."""
    outside = np.setdiff1d(np.arange(d), support)
    candidates = np.repeat(support[None], support.size * outside.size, axis=0)
    positions = np.repeat(np.arange(support.size), outside.size)
    candidates[np.arange(len(candidates)), positions] = np.tile(outside, support.size)
    return np.sort(candidates, axis=1)


def _swap_search_least_squares(G: np.ndarray, b: np.ndarray, y_norm2: float,
                               support: np.ndarray) -> tuple[np.ndarray, int]:
    """Best-improvement swap local search on ‖P_S y‖²; returns the local optimum and the subsets scored."""
    score, scored = float(_projected_norms(G, b, support[None])[0]), 1
    for _ in range(MAX_SWAPS):
        candidates = _swaps(support, b.size)
        if not len(candidates):
            break
        scores = _projected_norms(G, b, candidates)
        scored += len(candidates)
        best = int(np.argmax(scores))
        # f = ½(‖y‖² − score): a swap is taken when it lowers f by more than rounding.
        if scores[best] <= score + SWAP_TOL * y_norm2:
            break
        support, score = candidates[best], float(scores[best])
    else:
        log.warning("swap search stopped after %d swaps without reaching a local optimum", MAX_SWAPS)
    return support, scored


def _heuristic_least_squares(problem: Problem, k: int) -> Oracle:
    """"best known" for least squares: the best of several starts, each improved by a swap search.

    Starts: greedy forward selection (`_forward_stepwise`) seeded with each of the ``FORWARD_SEEDS`` columns
    that explain y best on their own (the first of them is plain forward selection), and the k largest
    entries of the minimum-norm least-squares solution A⁺y. Each is improved by swapping one column in and
    one out while f drops (`_swap_search_least_squares`); the result is a swap-local optimum, *not*
    certified. Scoring is in closed form, so the many starts are cheap (milliseconds for d = 64); a sweep
    scores k(d − k) subsets at O(k³) each, so the heuristic suits d up to a few thousand.
    """
    G, b = _gram_terms(problem)
    y_norm2 = float(problem.y @ problem.y)
    unconstrained = np.linalg.lstsq(problem.A, problem.y, rcond=None)[0]
    seeds = np.argsort(-_single_column_gains(G, b), kind="stable")[:FORWARD_SEEDS]
    starts = {tuple(_forward_stepwise(G, b, k, int(seed))) for seed in seeds} | {tuple(_top_k(unconstrained, k))}
    candidates, scored = [], 0
    for start in sorted(starts):  # sorted: a deterministic order, whatever the set's
        local, count = _swap_search_least_squares(G, b, y_norm2, np.array(start, dtype=np.intp))
        candidates.append(local)
        scored += count
    support, x, f = _best_of(problem, G, np.array(candidates))
    return Oracle(objective=f, support=support, x=x, how=BEST_KNOWN, subsets=scored, method="swap search")


def _certified_least_squares(problem: Problem, k: int, heuristic: Oracle, time_limit: float) -> Oracle:
    """The heuristic's answer, certified (or improved) by branch and bound when gurobipy is available.

    The branch-and-bound subset is refitted directly on A like every other candidate, and the better of it and
    the heuristic's is returned: ``"exact"`` when the solver proved optimality, else ``"best known"`` with the
    proved lower bound. Without gurobipy (or when it refuses the model) the heuristic's answer is returned.
    """
    certificate = mixed_integer.certify_least_squares(problem.A, problem.y, k, heuristic.support, time_limit)
    if certificate is None:
        return heuristic
    candidates = [heuristic.support]
    if certificate.support is not None:  # it may use fewer than k columns; pad from the heuristic's (f can only drop)
        extra = np.setdiff1d(heuristic.support, certificate.support)[:k - certificate.support.size]
        candidates.append(np.concatenate([certificate.support, extra]).astype(np.intp))
    support, x, f = _best_of(problem, _gram_terms(problem)[0], np.array(candidates))
    method = f"mixed-integer ({mixed_integer.solver_name()})"
    if certificate.optimal:
        return Oracle(objective=f, support=support, x=x, how=EXACT, subsets=heuristic.subsets, method=method,
                      lower_bound=min(f, certificate.lower_bound))
    return Oracle(objective=f, support=support, x=x, how=BEST_KNOWN, subsets=heuristic.subsets,
                  method=f"swap search + {method} (time limit)", lower_bound=certificate.lower_bound)


# ------------------------------------------------------------------------------------- any other problem
def _fit_on_support(problem: Problem, support: np.ndarray, start: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """argmin_{supp x ⊆ S} f(x) by Newton's method with Armijo backtracking on the coordinates of S.

    Starts at ``start`` restricted to S (zeros when None). The Newton direction uses ∇²f(x)_SS; where that
    block is not positive definite the step falls back to −∇f(x)_S. Stops when the Newton decrement
    λ² = ∇f_Sᵀ(∇²f_SS)⁻¹∇f_S (twice the predicted decrease of f) falls below 1e-15·max(1, |f|), or when the
    line search can no longer decrease f (machine precision reached). Returns (x, f(x)).
    """
    x = np.zeros(problem.d)
    if start is not None:
        x[support] = start[support]
    f = problem.objective(x)
    for _ in range(MAX_NEWTON):
        g = problem.gradient(x)[support]
        try:
            factor = scipy.linalg.cho_factor(problem.hessian(x)[np.ix_(support, support)])
            direction = -scipy.linalg.cho_solve(factor, g)
        except (np.linalg.LinAlgError, ValueError):
            direction = -g
        slope = float(g @ direction)
        if slope >= 0 or -slope <= 1e-15 * max(1.0, abs(f)):
            break
        step, trial = 1.0, x.copy()
        while step > 1e-12:
            trial[support] = x[support] + step * direction
            f_trial = problem.objective(trial)
            if f_trial <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        if f_trial >= f:
            break
        x, f = trial, f_trial
    else:
        log.warning("restricted fit on %d coordinates stopped after %d Newton steps", support.size, MAX_NEWTON)
    return x, f


def _exact_by_fits(problem: Problem, k: int) -> Oracle:
    """Fit every k-subset from zero (`_fit_on_support`); the first of equal objectives wins."""
    best_f, best_support, best_x, count = np.inf, None, None, 0
    for subset in itertools.combinations(range(problem.d), k):
        support = np.array(subset, dtype=np.intp)
        x, f = _fit_on_support(problem, support)
        count += 1
        if f < best_f:
            best_f, best_support, best_x = f, support, x
    return Oracle(objective=best_f, support=best_support, x=best_x, how=EXACT, subsets=count, lower_bound=best_f)


def _forward_by_gradient(problem: Problem, k: int) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Greedy forward selection: add the coordinate with the largest |∇f| at the current fit, refit (OMP-like)."""
    support, x = np.empty(0, dtype=np.intp), np.zeros(problem.d)
    f = problem.objective(x)
    for _ in range(k):
        g = np.abs(problem.gradient(x))
        g[support] = -np.inf
        support = np.sort(np.append(support, int(np.argmax(g))))
        x, f = _fit_on_support(problem, support, x)
    return support, x, f, k


def _swap_search_fits(problem: Problem, support: np.ndarray, x: np.ndarray,
                      f: float) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Best-improvement swap local search with a warm-started fit per swap; returns (S, x, f, fits)."""
    fits = 0
    for _ in range(MAX_SWAPS):
        best = (f, support, x)
        for candidate in _swaps(support, problem.d):
            start = np.where(np.isin(np.arange(problem.d), candidate), x, 0.0)
            x_new, f_new = _fit_on_support(problem, candidate, start)
            fits += 1
            if f_new < best[0]:
                best = (f_new, candidate, x_new)
        if not best[0] < f - SWAP_TOL * max(1.0, abs(f)):
            break
        f, support, x = best
    else:
        log.warning("swap search stopped after %d swaps without reaching a local optimum", MAX_SWAPS)
    return support, x, f, fits


def _heuristic_fits(problem: Problem, k: int) -> Oracle:
    """"best known" for problems without a closed form: two starts, each improved by a swap search.

    Starts: greedy forward selection by the gradient (`_forward_by_gradient`) and the k largest entries of the
    unconstrained minimiser (Newton on all d coordinates), refitted on their support. Each is improved by
    `_swap_search_fits`. Not certified: the value is an upper bound of f_best.
    """
    dense, _ = _fit_on_support(problem, np.arange(problem.d))
    top = _top_k(dense, k)
    top_x, top_f = _fit_on_support(problem, top)
    starts = [_forward_by_gradient(problem, k), (top, top_x, top_f, 2)]  # 2 fits: the dense one and the refit
    results, count = [], 0
    for support, x, f, used in starts:
        support, x, f, searched = _swap_search_fits(problem, support, x, f)
        results.append((f, tuple(support), x))
        count += used + searched
    f, support, x = min(results, key=lambda result: (result[0], result[1]))
    return Oracle(objective=f, support=np.array(support, dtype=np.intp), x=x, how=BEST_KNOWN, subsets=count,
                  method="swap search")
