"""Batched trials: the trials of phase-diagram cells that share (m, d) solved as one computation.

IHT, NIHT, HTP, CoSaMP, Subspace Pursuit, OMP and Topk-I-OBS (NSIHT, its Meng & Zhao parameterisation) run on
stacked instances A (B×m×d), y (B×m) (`problems.batched.ProblemBatch`), each trial with its own budget k (the
cells of one δ column differ in k alone). Each batched solver reproduces its one-trial solver
(`solvers.hard_thresholding`, `solvers.pursuit`, `solvers.iobs`): the same final iterate, the same iteration count,
status and message, the same final trace row. The per-iteration trace is not kept (a phase diagram keeps the final
row only) and no bound tracker observes the run.

Design
------
**One loop.** `BatchedSolver.run` is `solvers.base.IterativeSolver.run` for B trials at once: the same rules in the
same order — the solver's own stopping rule, the cycle rule (`solvers.base.CycleDetector`: a point visited before,
not the previous one, ends the run at the best point visited), non-finite iterates, divergence, the relative step
test ‖x_t − x_{t−1}‖ ≤ tol·‖x_{t−1}‖, the stall rule (``stall_window``), ``max_iter`` — and the verdict on the final
point of `solvers.base._finish`.
A solver writes only ``init`` and ``step`` on stacked arrays; ``init`` starts from the one-trial ``init`` of every
instance, so per-instance constants (the step 1/L, the Hessian factor, OMP's floors) are the one-trial values and
an instance whose ``init`` fails ends with status ``error`` as it would alone.

**Same arithmetic.** With numpy, a stacked ``np.matmul`` makes, trial by trial, the BLAS call the one-trial code
makes (same routine, same operand layout: ``A.T`` as a transposed view, gathered columns in the column-major layout
of ``A[:, S]``, `solvers._kernels.sparse_product`'s choice between the two), the top-k set is the one of
`solvers._kernels.top_k_indices` (ties at the k-th magnitude are left to the same introselect), and the small
LAPACK solves (least-squares refits, Cholesky solves) run per trial through the one-trial kernels. The iterates are
therefore the one-trial iterates bit for bit, and every decision taken from them (support changes, stopping) is the
one-trial decision. Vectorised norms decide only clear cases; a test within `EXACT_WINDOW` of its threshold is
redone with the one-trial norms.

**Cycle keys.** The cycle rule compares iterates bit for bit through a 128-bit key per iterate (`cycle_keys`,
vectorised) instead of the one-trial blake2b digest: equal points have equal keys in both, and a false match
(about 2⁻¹²⁸) is the one-trial risk as well.

**Blocks.** The rules cost a few dozen numpy calls per iteration whatever the batch, as much as the products
of a 20-trial cell at n = 200. For solvers whose step is pure (`BatchedSolver.speculative`: IHT, Topk-I-OBS) the
loop runs blocks of up to `MAX_BLOCK` iterations ahead of the rules and then applies them to the whole block at
once (`BatchedSolver._block`): a trial ends at the first iteration at which a rule ends it, exactly as one
iteration at a time, and the iterations it computed beyond are dropped (blocks grow 1, 1, 2, …, 8 so that a trial
that ends early wastes little).

**Active set.** A trial that stops leaves the batch at once: every per-trial array is re-indexed to the trials still
running, so a trial that runs to ``max_iter`` never makes the others wait and the others never make it pay for them.

**Backends.** `NumpyBackend` (the default) and `TorchBackend` (float64 on the CPU or CUDA) implement the few stacked
primitives the solvers use. Torch agrees with numpy to rounding: it uses its own BLAS, dense products throughout,
``torch.topk`` and QR refits (the one-trial kernel where a support is rank deficient). Where the one-trial solver
itself decides from rounding noise — CoSaMP merging 3k > m columns once its fit is exact picks them from Aᵀr ≈ 0,
and a cycle is a repetition of bits — another BLAS takes other, equally valid, decisions; elsewhere the statuses,
iteration counts and iterates agree (tested to 1e-10). The loop's bookkeeping (norms, cycle keys, stopping) runs on
the host in both, on a copy of the b×d iterates per iteration.

**Time.** ``time_s`` of a trial is its share of the batch's wall time: the one-trial ``init`` of its instance,
then every batched iteration it took part in divided equally among the trials active in it, bookkeeping included
(in a block: the block's time divided equally among its trial-iterations, those dropped included).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
from scipy.linalg import lapack

from problems.base import Problem
from problems.batched import ProblemBatch
from solvers._kernels import (SPARSE_PRODUCT_DENSITY, cholesky_solve, least_squares_on_support, robust_norm,
                              RowGramFactor, row_gram_factor, solve_lower_triangular)
from solvers.base import IterativeSolver, Result, State, Trace, _finish, stall_message, stalled
from solvers.hard_thresholding import HTP, IHT, MAX_BACKTRACKS, NIHT
from solvers.iobs import TopkIOBS
from solvers.newton_step import NSIHT
from solvers.pursuit import (DEPENDENCE_RTOL, OMP, RESIDUAL_RTOL, TRANSPOSED_COPY_MIN_ATOMS, CoSaMP,
                             SubspacePursuit)

log = logging.getLogger(__name__)

BACKENDS = ("numpy", "torch")
#: Relative window around a stopping threshold inside which a vectorised norm (einsum, rounding ~d·ε) is not
#: trusted and the test is redone with `robust_norm` (BLAS ``dnrm2``), the norm of the one-trial loop.
EXACT_WINDOW = 1e-9
#: Odd multiplier of splitmix64 (Steele, Lea & Flood 2014) mixing the bits of every entry before the cycle key.
MIX = np.uint64(0xBF58476D1CE4E5B9)
HALF = np.uint64(32)
#: Longest block of iterations a pure (``speculative``) batched solver runs ahead of the rules (`BatchedSolver._block`):
#: the rules' numpy calls are shared by the block, and a trial that ends inside it wastes at most the rest.
MAX_BLOCK = 8
#: Iterate entries (trials × d × iterations) of a block at most: blocks save numpy calls, whose cost does not grow
#: with the batch, and copy the block's iterates, which does; past ~256 KB the copies cost more than the calls
#: saved (measured: 20 trials at d = 200 gain ~20% per iteration with blocks of 8, 100 trials nothing).
BLOCK_ENTRIES = 2 ** 15


# ---------------------------------------------------------------------------------------------- backends
class NumpyBackend:
    """Stacked numpy arrays; every product and solve is the one-trial BLAS/LAPACK call, trial by trial."""

    name = "numpy"

    def __init__(self, device: str | None = None):
        if device not in (None, "cpu"):
            raise ValueError(f"device={device!r} needs backend=torch (numpy runs on the CPU)")
        self.device = "cpu"
        self._plan: tuple[Any, Any] | None = None  # the budget array last seen and its plan (`_budget_plan`)

    def asarray(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def host(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def index(self, rows: np.ndarray) -> np.ndarray:
        return rows

    def copy(self, a: np.ndarray) -> np.ndarray:
        return a.copy()

    def zeros(self, shape: tuple[int, ...], dtype: type = float) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def where(self, condition: Any, a: Any, b: Any) -> np.ndarray:
        return np.where(condition, a, b)

    def matvec(self, A: np.ndarray, v: np.ndarray) -> np.ndarray:
        """A_b v_b for every b: one ``gemv`` per trial with the layout of ``A`` (the one-trial ``A @ v``)."""
        return np.matmul(A, v[..., None])[..., 0]

    def rmatvec(self, A: np.ndarray, r: np.ndarray) -> np.ndarray:
        """A_bᵀ r_b through the transposed view (the one-trial ``A.T @ r``)."""
        return np.matmul(A.transpose(0, 2, 1), r[..., None])[..., 0]

    def rowdot(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """u_b · v_b, one ``ddot`` per trial (the one-trial ``u @ v``; √ of it is ``np.linalg.norm``)."""
        return np.matmul(u[:, None, :], v[:, :, None])[:, 0, 0]

    def sparse_product(self, A: np.ndarray, V: np.ndarray) -> np.ndarray:
        """`solvers._kernels.sparse_product` of every trial: the dense product, or where at most
        `SPARSE_PRODUCT_DENSITY` of v_b is nonzero the product of the gathered columns A[:, supp v_b] —
        trials grouped by |supp v_b|, each group one stacked call."""
        b, d = V.shape
        counts = np.count_nonzero(V, axis=1)
        sparse = counts <= SPARSE_PRODUCT_DENSITY * d
        if not sparse.any():
            return self.matvec(A, V)
        # gathered rows overwrite their dense result: rows are independent, so a mixed batch stays exact
        out = self.matvec(A, V) if not sparse.all() else np.empty((b, A.shape[1]))
        for size in np.unique(counts[sparse]):
            rows = np.flatnonzero(sparse & (counts == size))
            idx = np.nonzero(V[rows])[1].reshape(rows.size, size)
            # (r, s, m) C-ordered: its transpose has the column-major layout of the one-trial A[:, S]
            columns = A.transpose(0, 2, 1)[rows[:, None], idx]
            out[rows] = np.matmul(columns.transpose(0, 2, 1), V[rows[:, None], idx][..., None])[..., 0]
        return out

    def topk_mask(self, V: np.ndarray, k: Any) -> np.ndarray:
        """The set of `solvers._kernels.top_k_indices` (the k_b largest |v|) of every row b, as a mask; ``k`` is one
        budget or one per row.

        The k-th largest |v| by ``np.partition`` (3x cheaper than ``argpartition``; one call for every budget of
        the batch; NaN sorts last, as in ``argpartition``) and the entries at or above it or NaN: when they are
        exactly k they are the only possible top-k set. A row with a tie at the k-th value takes the one-trial
        introselect itself, so ties break as the one-trial solver breaks them."""
        b, d = V.shape
        magnitude = np.abs(V)
        k, positions, kept = self._budget_plan(k, b, d)
        if positions is None:  # one budget (always within a cell): one kth for every row
            if k == d:  # k ≥ d keeps every entry, as top_k_indices does
                return np.ones((b, d), dtype=bool)
            kth = np.partition(magnitude, d - k, axis=1)[:, d - k]
        else:
            kth = np.partition(magnitude, positions[0], axis=1)[positions[1], d - k]
        mask = ~(magnitude < kth[:, None])  # NaN counts as the largest, as in the one-trial introselect
        # every row keeps at least its k: exactly k in every row iff exactly Σk in all (one count, not one per row)
        if np.count_nonzero(mask) != kept:
            ties = np.count_nonzero(mask, axis=1) != k
            for i in np.flatnonzero(ties):
                ki = k if np.ndim(k) == 0 else int(k[i])
                mask[i] = ki == d
                if ki < d:
                    mask[i, np.argpartition(magnitude[i], d - ki)[d - ki:]] = True
        return mask

    def _budget_plan(self, k: Any, b: int, d: int) -> tuple[Any, Any, int]:
        """(k clipped to d: an int when every row has the same budget, else an array; None or the partition
        positions of the distinct budgets and the row numbers; Σk). The loop passes the same budget array
        every iteration until trials leave, so the plan of the last array is kept (held, so never confused with
        a new array at a reused address; budget arrays are never written in place)."""
        if self._plan is not None and self._plan[0] is k:
            return self._plan[1]
        largest = int(np.max(k))
        if np.ndim(k) == 0 or int(np.min(k)) == largest:
            plan = (min(largest, d), None, b * min(largest, d))
        else:
            clipped = np.minimum(k, d)
            plan = (clipped, (np.unique(d - clipped), np.arange(b)), int(clipped.sum()))
        if np.ndim(k):
            self._plan = (k, plan)
        return plan

    def threshold(self, V: np.ndarray, k: Any) -> np.ndarray:
        """T_k of every row (`solvers._kernels.hard_threshold`: the kept entries, +0.0 elsewhere)."""
        return np.where(self.topk_mask(V, k), V, 0.0)

    def lstsq(self, A: np.ndarray, y: np.ndarray, mask: np.ndarray, rows: np.ndarray,
              row_grams: Sequence[Callable[[], RowGramFactor]] | None = None) -> np.ndarray:
        """argmin_{supp b ⊆ S_i} ‖A_i b − y_i‖² for the trials ``rows`` on the supports ``mask[rows]``:
        `solvers._kernels.least_squares_on_support` (semi-normal equations, ``gelsy`` when ill-conditioned) per
        trial, (len(rows), d); ``row_grams[j]`` gives the factored AAᵀ of trial ``rows[j]``'s instance, as the
        one-trial solver passes it."""
        out = np.empty((rows.size, A.shape[2]))
        for j, i in enumerate(rows):
            out[j] = least_squares_on_support(A[i], y[i], np.flatnonzero(mask[i]),
                                              None if row_grams is None else row_grams[j])
        return out

    def factors(self, factors: Sequence[tuple[np.ndarray, bool]]) -> np.ndarray:
        """Stack ``scipy.linalg.cho_factor`` pairs so that ``stack[b].T`` is trial b's (column-major) factor."""
        return np.stack([np.asarray(c).T for c, _ in factors])

    def factor_solve(self, stack: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """H_b⁻¹ rhs_b from `factors`: the LAPACK call (``potrs``) of ``scipy.linalg.cho_solve``, per trial."""
        out = np.empty_like(rhs)
        for i in range(rhs.shape[0]):
            out[i], info = lapack.dpotrs(stack[i].T, rhs[i], lower=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"Cholesky solve failed (LAPACK info={info})")
        return out

    def solve_lower(self, L: np.ndarray, rhs: np.ndarray, transposed: bool = False) -> np.ndarray:
        """L_b⁻¹ rhs_b (L_b⁻ᵀ rhs_b): `solvers._kernels.solve_lower_triangular` per trial."""
        return np.stack([solve_lower_triangular(L[i], rhs[i], transposed) for i in range(rhs.shape[0])])

    def cholesky_solve(self, L: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """(L_b L_bᵀ)⁻¹ rhs_b: `solvers._kernels.cholesky_solve` per trial."""
        return np.stack([cholesky_solve(L[i], rhs[i]) for i in range(rhs.shape[0])])

    def contiguous_transpose(self, A: np.ndarray) -> np.ndarray:
        """Aᵀ of every trial as a C-ordered copy (OMP's column-major copy of A)."""
        return np.ascontiguousarray(A.transpose(0, 2, 1))


class TorchBackend:
    """Stacked float64 torch tensors on a CPU or CUDA device: batched BLAS, ``torch.topk``, batched QR refits."""

    name = "torch"

    def __init__(self, device: str | None = None):
        import torch

        self.torch = torch
        try:
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            torch.zeros(1, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            raise ValueError(f"device={device!r} is not available to torch: {str(exc).splitlines()[0]}") from None

    def asarray(self, a: Any) -> Any:
        a = np.array(a, copy=True) if isinstance(a, np.ndarray) and not a.flags.writeable else np.asarray(a)
        dtype = self.torch.float64 if a.dtype.kind == "f" else None
        return self.torch.as_tensor(a, dtype=dtype, device=self.device)

    def host(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy() if isinstance(a, self.torch.Tensor) else np.asarray(a)

    def index(self, rows: np.ndarray) -> Any:
        return self.torch.as_tensor(np.asarray(rows, dtype=np.int64), device=self.device)

    def copy(self, a: Any) -> Any:
        return a.clone()

    def zeros(self, shape: tuple[int, ...], dtype: type = float) -> Any:
        dtypes = {float: self.torch.float64, bool: self.torch.bool, int: self.torch.int64}
        return self.torch.zeros(shape, dtype=dtypes[dtype], device=self.device)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return self.torch.where(condition, a, b)

    def matvec(self, A: Any, v: Any) -> Any:
        return self.torch.matmul(A, v.unsqueeze(-1)).squeeze(-1)

    def rmatvec(self, A: Any, r: Any) -> Any:
        return self.torch.matmul(A.mT, r.unsqueeze(-1)).squeeze(-1)

    def rowdot(self, u: Any, v: Any) -> Any:
        return self.torch.matmul(u.unsqueeze(-2), v.unsqueeze(-1))[..., 0, 0]

    def sparse_product(self, A: Any, V: Any) -> Any:
        """A v for every trial, dense (gathering columns saves little on an accelerator)."""
        return self.matvec(A, V)

    def topk_mask(self, V: Any, k: Any) -> Any:
        b, d = V.shape
        k = self.torch.clamp(self.torch.as_tensor(k, device=self.device).expand(b), max=d)
        width = int(k.max())
        indices = self.torch.topk(V.abs(), width, dim=1, sorted=True).indices
        keep = self.torch.arange(width, device=self.device)[None, :] < k[:, None]
        return self.zeros((b, d), dtype=bool).scatter_(1, indices, keep)

    def threshold(self, V: Any, k: Any) -> Any:
        return self.torch.where(self.topk_mask(V, k), V, 0.0)

    def lstsq(self, A: Any, y: Any, mask: Any, rows: np.ndarray, row_grams: Any = None) -> Any:
        """The refits of `NumpyBackend.lstsq` by batched QR, trials grouped by support size (no padding): of A_S
        when |S| ≤ m, of A_Sᵀ (the minimum-norm solution, as the one-trial kernel returns) otherwise (a QR of
        A_S needs no Gram matrix: ``row_grams`` is not used; the results agree with the numpy path to rounding)."""
        torch = self.torch
        trials = self.index(rows)
        sub = mask[trials]
        counts = self.host(sub.sum(1))
        out = self.zeros((rows.size, A.shape[2]))
        for size in np.unique(counts):
            if size == 0:  # an empty support fits x = 0
                continue
            group = np.flatnonzero(counts == size)
            g = self.index(group)
            idx = sub[g].nonzero()[:, 1].reshape(group.size, int(size))  # row-major: sorted per row
            A_S = A.mT[trials[g][:, None], idx].mT
            coef, full_rank = self._qr_solve(A_S, y[trials[g]])
            for j in np.flatnonzero(~self.host(full_rank)):  # rank deficient: the one-trial kernel (gelsy there)
                coef[j] = self.asarray(least_squares_on_support(self.host(A_S[j]), self.host(y[trials[g][j]]),
                                                                np.arange(int(size))))
            out[g[:, None], idx] = coef
        return out

    def _qr_solve(self, A_S: Any, y: Any) -> tuple[Any, Any]:
        """Least squares (s ≤ m) or minimum-norm (s > m) solutions by QR, and whether R is numerically full rank
        (|R_ii| > max(m, s)·ε·max|R_jj|, the rank test of a complete orthogonal factorisation)."""
        torch = self.torch
        m, s = A_S.shape[-2:]
        if s <= m:
            Q, R = torch.linalg.qr(A_S)
            coef = torch.linalg.solve_triangular(R, Q.mT @ y.unsqueeze(-1), upper=True).squeeze(-1)
        else:
            Q, R = torch.linalg.qr(A_S.mT)
            coef = (Q @ torch.linalg.solve_triangular(R.mT, y.unsqueeze(-1), upper=False)).squeeze(-1)
        pivots = R.diagonal(dim1=-2, dim2=-1).abs()
        full_rank = (pivots > max(m, s) * np.finfo(float).eps * pivots.amax(-1, keepdim=True)).all(-1)
        return coef, full_rank

    def factors(self, factors: Sequence[tuple[np.ndarray, bool]]) -> Any:
        return self.asarray(np.stack([np.tril(c) for c, _ in factors]))

    def factor_solve(self, stack: Any, rhs: Any) -> Any:
        return self.torch.cholesky_solve(rhs.unsqueeze(-1), stack).squeeze(-1)

    def solve_lower(self, L: Any, rhs: Any, transposed: bool = False) -> Any:
        matrix = L.mT if transposed else L
        return self.torch.linalg.solve_triangular(matrix, rhs.unsqueeze(-1), upper=transposed).squeeze(-1)

    def cholesky_solve(self, L: Any, rhs: Any) -> Any:
        return self.torch.cholesky_solve(rhs.unsqueeze(-1), L).squeeze(-1)

    def contiguous_transpose(self, A: Any) -> Any:
        return A.mT.contiguous()


def get_backend(backend: str = "numpy", device: str | None = None) -> NumpyBackend | TorchBackend:
    """The backend for a name: ``"numpy"`` (default) or ``"torch"`` (``device`` "cpu", "cuda", "cuda:1", …;
    None: CUDA when available, else the CPU). A one-line ``ValueError`` for anything else."""
    if backend == "numpy":
        return NumpyBackend(device)
    if backend == "torch":
        try:
            return TorchBackend(device)
        except ImportError:
            raise ValueError("backend=torch needs torch (pip install obsbench[torch])") from None
    raise ValueError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}")


# ------------------------------------------------------------------------------------------------ engine
@dataclass
class Step:
    """What one batched iteration returns for the b active trials.

    Attributes
    ----------
    x : array (b, d)
        The new iterates x_t (any value in rows that ``stay`` or fail).
    step_size : ndarray (b,)
        The step each trial used (NaN where the solver has none).
    residual : array (b, m), optional
        A x_t − y as the next step will use it (OMP: its own y − A x_t), if the step computed it already.
    stay : ndarray of bool (b,), optional
        Trials whose own rule ends the run at x_{t−1}: the one-trial step returned its state with ``finished``.
    finished : ndarray of str (b,), optional
        '' or the rule that ends the run: at x_{t−1} for rows that ``stay``, at x_t otherwise.
    error : ndarray of str (b,), optional
        '' or the exception a one-trial step raises there (the run ends with status ``error`` at x_{t−1}).
    """

    x: Any
    step_size: np.ndarray
    residual: Any = None
    stay: np.ndarray | None = None
    finished: np.ndarray | None = None
    error: np.ndarray | None = None


@dataclass
class _End:
    """How one trial ended: the point of its final row, the verdict, and that row's iteration, step and time."""

    x: np.ndarray
    status: str
    message: str
    n_iter: int
    iteration: int
    step_size: float
    time_s: float


def _messages(b: int) -> np.ndarray:
    return np.full(b, "", dtype=object)


def _cycle_message(t: int, earlier: int, best_iteration: int, best_objective: float) -> str:
    return (f"the iterates cycle (x_{t} = x_{earlier}, period {t - earlier}): stopped at the best point visited "
            f"(iteration {best_iteration}, objective {best_objective:.6g})")


def _norms(be: Any, V: Any) -> np.ndarray:
    """``np.linalg.norm`` of every row, as numpy computes it for a vector: √(v·v) (host array)."""
    return np.sqrt(be.host(be.rowdot(V, V)))


def _step_test_factor(tol: float) -> float:
    """((1 + w)·tol)²: ‖x_t − x_{t−1}‖² above this times ‖x_{t−1}‖² clearly fails the step test (no stop yet;
    w = `EXACT_WINDOW`)."""
    return (tol * (1 + EXACT_WINDOW)) ** 2


def _squared_norms(V: np.ndarray) -> np.ndarray:
    """‖v_b‖² of every row of a host array by one stacked ``ddot`` each (rounding ~d·ε: for the clear cases of
    `BatchedSolver._stopping` only, which redoes a test within `EXACT_WINDOW` of its threshold exactly)."""
    return np.matmul(V[:, None, :], V[:, :, None])[:, 0, 0]


def cycle_keys(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A 128-bit key of the bits of every row: each entry's 64 bits z mixed as (z·c) ⊕ (z·c ≫ 32) (c odd, so a
    bijection that moves high bits down), then two random linear combinations modulo 2⁶⁴ (``weights``, (d, 2),
    odd entries).

    Equal rows (bit for bit, so +0.0 ≠ −0.0 as in `solvers.base.CycleDetector`'s byte digest) have equal keys.
    Rows that differ in one entry never collide (an odd weight times a nonzero difference is nonzero modulo
    2⁶⁴); otherwise a lane collides with probability about 2⁻⁶⁴ (at worst 2⁻³² for differences confined to sign
    bits), and both lanes must. A sixth of the cost of the one-trial blake2b digest of every row.
    """
    z = np.ascontiguousarray(x).view(np.uint64) * MIX
    z ^= z >> HALF
    return z @ weights


class _Active:
    """Host-side records of the trials still running, one row each, re-indexed when trials leave.

    ``x`` is x_{t−1}, ``step2`` the square of (1 + w)·tol·‖x_{t−1}‖ (to rounding; w = `EXACT_WINDOW`), ``margin2``
    the squared norm above which x_t may be beyond the blow-up scale; ``keys[:, s]`` is the cycle key (`cycle_keys`) of
    x_s, for every s < t (capacity doubled as needed); ``best_*`` is the best point visited (lowest objective,
    strict), as in `solvers.base.CycleDetector`; ``last_*`` are the step size and time of the last recorded row;
    ``objectives[:, s % w]`` is f(x_s) for the last w = ``stall_window`` iterations s (one column when the rule is
    off), the f(x_{t−w}) of the stall rule; ``last_objective`` is f(x_{t−1}) and ``floor`` min_{s ≤ t−2} f(x_s) (+inf
    for t = 1), the cycle rule's filter (`BatchedSolver._cycles`).
    """

    ROW_FIELDS = ("ids", "x", "step2", "x_star", "blowup", "margin2", "best_x", "best_objective", "best_iteration",
                  "last_step", "last_time", "elapsed", "keys", "objectives", "last_objective", "floor")

    def __init__(self, ids: np.ndarray, x: np.ndarray, objective: np.ndarray, x_star: np.ndarray, factor: float,
                 tol: float, elapsed: np.ndarray, keys: np.ndarray, window: int | None = None):
        self.ids, self.x, self.x_star, self.elapsed = ids, x, x_star, elapsed
        self.step2 = _step_test_factor(tol) * np.einsum("ij,ij->i", x, x)
        star = np.array([robust_norm(v) for v in x_star])
        first = np.array([robust_norm(a - b) for a, b in zip(x, x_star)])
        self.blowup = np.array([factor * np.nanmax([f, s, 1.0]) for f, s in zip(first, star)])
        margin = (1 - EXACT_WINDOW) * self.blowup - star  # NaN without a truth: the distance is NaN, never beyond
        with np.errstate(over="ignore"):  # a blow-up scale beyond 1e154: no finite x reaches it, inf is right
            self.margin2 = np.where(margin > 0, margin ** 2, np.where(np.isnan(margin), np.inf, -1.0))
        self.keys = np.zeros((ids.size, 64, 2), dtype=np.uint64)
        self.keys[:, 0] = keys
        self.best_x = x.copy()
        self.best_objective = np.where(objective < np.inf, objective, np.inf)
        self.best_iteration = np.zeros(ids.size, dtype=int)
        self.last_step = np.full(ids.size, np.nan)
        self.last_time = elapsed.copy()
        self.objectives = np.repeat(objective[:, None], window or 1, axis=1)
        self.last_objective = objective.copy()
        self.floor = np.full(ids.size, np.inf)

    def keep(self, rows: np.ndarray) -> None:
        for name in self.ROW_FIELDS:
            setattr(self, name, getattr(self, name)[rows])

    def remember(self, t: int, keys: np.ndarray) -> None:
        """Store the keys of x_t, …, x_{t+n−1} (``keys`` (b, 2) or (b, n, 2); all rows: those that leave do not
        matter)."""
        n = 1 if keys.ndim == 2 else keys.shape[1]
        while t + n > self.keys.shape[1]:
            self.keys = np.concatenate([self.keys, np.zeros_like(self.keys)], axis=1)
        self.keys[:, t:t + n] = keys.reshape(keys.shape[0], n, 2)


class BatchedSolver:
    """Base of the batched solvers: the loop of `solvers.base.IterativeSolver.run` over a batch.

    Parameters
    ----------
    solver : IterativeSolver
        The one-trial solver: its parameters, its ``validate`` and ``init`` per instance.
    backend : {"numpy", "torch"}
        Array library of the iterations (`get_backend`).
    device : str, optional
        Torch device ("cpu", "cuda", …); None: CUDA when available. Numpy accepts only None or "cpu".
    """

    #: The one-trial classes this batched solver reproduces (exact classes: a subclass may change the algorithm).
    one_trial: ClassVar[tuple[type[IterativeSolver], ...]] = ()
    #: Whether the objective of every iterate is computed from the iterate alone (the residual of `residual`, or a
    #: step's residual computed that way), so that equal iterates have equal objectives bit for bit: the cycle
    #: rule then compares only the iterates whose objective is not below every earlier one (`_cycles`).
    objective_of_x: ClassVar[bool] = True
    #: Whether ``step`` is pure: no rule of its own (no ``stay``, ``finished`` or ``error``) and nothing but its
    #: result depends on whether the trial goes on, so iterations may run ahead of the rules: `_loop` then takes
    #: blocks of up to `MAX_BLOCK` iterations of every trial and applies the rules to the block at once (`_block`).
    speculative: ClassVar[bool] = False

    def __init__(self, solver: IterativeSolver, backend: str = "numpy", device: str | None = None):
        self.solver = solver
        self.be = get_backend(backend, device)

    # -- the solver's part ---------------------------------------------------------------------------------
    def init(self, S: dict[str, Any], states: list[State]) -> None:
        """Add the solver's per-trial arrays to ``S`` (A, y, x = x_0 are there) from the one-trial states."""

    def step(self, S: dict[str, Any], t: int) -> Step:
        """Iteration t of every active trial (``S["r"]`` holds the residual sparse_product(A, x) − y of x)."""
        raise NotImplementedError

    def residual(self, S: dict[str, Any], x: Any) -> Any:
        """sparse_product(A, x) − y of every trial: the residual of `solvers._kernels.gradient_at`."""
        return self.be.sparse_product(S["A"], x) - S["y"]

    def row_grams(self, S: dict[str, Any], rows: np.ndarray) -> list[Callable[[], RowGramFactor]]:
        """The factored AAᵀ of the instances of ``rows`` (`solvers._kernels.row_gram_factor`, computed on first
        use and cached on the instance), as the one-trial refits take it."""
        trials = self.be.host(S["trial"])[rows]
        return [partial(row_gram_factor, self._problems[i]) for i in trials]

    def _advance(self, S: dict[str, Any], t: int) -> tuple[Step, Any]:
        """Iteration t's step and the residual of its iterate (the step's own, else `residual`)."""
        step = self.step(S, t)
        return step, step.residual if step.residual is not None else self.residual(S, step.x)

    # -- the loop -------------------------------------------------------------------------------------------
    def run(self, batch: ProblemBatch, solvers: Sequence[IterativeSolver] | None = None,
            monitor: Callable[[int, np.ndarray, np.ndarray], None] | None = None) -> list[Result]:
        """Solve every trial of ``batch``; one `solvers.base.Result` per trial whose trace is its final row.

        Parameters
        ----------
        batch : ProblemBatch
            The instances.
        solvers : sequence of IterativeSolver, optional
            One one-trial solver per instance (default: ``solver`` for all). They may differ in the budget ``k``
            alone (the cells of one δ column of a phase diagram share (m, d) and differ in k), so each trial keeps
            its own k while sharing the batch.
        monitor : callable, optional
            ``monitor(t, ids, x)`` after every iteration t, with the batch positions of the trials that took part
            in it and their x_t (host arrays; rows that stopped at x_{t−1} included).
        """
        solvers = self._solvers(batch, solvers)
        tic = time.perf_counter()
        budgets, states, errors = [], [], []
        for problem, solver in zip(batch.problems, solvers):
            solver.validate(problem)  # a bad parameter raises (SolverConfigError), as in the one-trial run
            budgets.append(solver.k_)
            try:
                states.append(solver.init(problem))  # right after validate: init reads the k_ it set
                errors.append("")
            except Exception as exc:  # a fault is a result row, never a hole in the grid
                states.append(None)
                errors.append(f"{type(exc).__name__}: {exc}")
        init_time = (time.perf_counter() - tic) / batch.size
        ends: dict[int, _End] = {}
        alive = np.array([i for i, error in enumerate(errors) if not error], dtype=int)
        if alive.size:
            self._loop(batch, alive, [states[i] for i in alive], np.array(budgets)[alive], init_time, ends,
                       monitor)
        results = []
        for i, problem in enumerate(batch.problems):
            if errors[i]:  # the one-trial run of a failed init: a NaN point at iteration 0
                result = _finish(problem, Trace(problem), None, "error", errors[i], 0, 0.0)
            else:
                result = self._result(problem, states[i].x, init_time, ends[i])
            results.append(result)
        return results

    def _solvers(self, batch: ProblemBatch, solvers: Sequence[IterativeSolver] | None) -> list[IterativeSolver]:
        """One solver per trial, all of this batched solver's class with the parameters of ``solver`` but k."""
        if solvers is None:
            return [self.solver] * batch.size
        solvers = list(solvers)
        shared = {key: value for key, value in self.solver.get_params().items() if key != "k"}
        for solver in solvers:
            params = {key: value for key, value in solver.get_params().items() if key != "k"}
            if type(solver) is not type(self.solver) or params != shared:
                raise ValueError(f"the trials of a batch must share the solver and its parameters but k; got "
                                 f"{solver!r} beside {self.solver!r}")
        if len(solvers) != batch.size:
            raise ValueError(f"{len(solvers)} solvers for {batch.size} instances")
        return solvers

    def _loop(self, batch: ProblemBatch, alive: np.ndarray, states: list[State], budgets: np.ndarray,
              init_time: float, ends: dict[int, _End], monitor: Any) -> None:
        be, solver = self.be, self.solver
        tic = time.perf_counter()
        whole = alive.size == batch.size  # no copy of the stack when every init succeeded
        S = {"A": be.asarray(batch.A if whole else batch.A[alive]),
             "y": be.asarray(batch.y if whole else batch.y[alive]),
             "x": be.asarray(np.stack([state.x for state in states])),
             "k": be.asarray(budgets.astype(np.int64)),
             "trial": be.asarray(alive)}  # each row's batch position: its instance's cached constants
        self._problems = batch.problems
        self.init(S, states)
        if "r" not in S:
            S["r"] = self.residual(S, S["x"])
        objective = 0.5 * be.host(be.rowdot(S["r"], S["r"]))
        # fixed per batch (no global state): the cycle keys of one run only ever meet each other
        self._weights = np.random.default_rng(0x0B5).integers(0, 2**63, size=(batch.d, 2), dtype=np.uint64) * \
            np.uint64(2) + np.uint64(1)
        x0 = be.host(S["x"]).copy()
        elapsed = np.full(alive.size, init_time + (time.perf_counter() - tic) / alive.size)
        act = _Active(alive, x0, objective, batch.x_star[alive], solver.divergence_factor, solver.tol, elapsed,
                      cycle_keys(x0, self._weights), solver.stall_window)
        self.active_sizes_ = []
        t = 1
        while t <= solver.max_iter and act.ids.size:
            # blocks of 1, 1, 2, 4, 8, 8, ... iterations: a trial that ends early wastes at most its block's rest
            length = min(MAX_BLOCK, max(1, t // 2), solver.max_iter - t + 1,
                         max(1, BLOCK_ENTRIES // act.x.size)) if self.speculative else 1
            if length > 1:
                keep = self._block(batch, S, act, t, length, ends, monitor)
            else:
                self.active_sizes_.append(int(act.ids.size))
                keep = self._iterate(batch, S, act, t, ends, monitor)
            t += length
            if keep is not None:
                index = be.index(keep)
                for name in S:
                    S[name] = S[name][index]
                act.keep(keep)
        for j, i in enumerate(act.ids):
            ends[i] = _End(act.x[j], "max_iter", f"reached max_iter={solver.max_iter}", solver.max_iter,
                           solver.max_iter, act.last_step[j], act.last_time[j])

    def _iterate(self, batch: ProblemBatch, S: dict[str, Any], act: _Active, t: int, ends: dict[int, _End],
                 monitor: Any) -> np.ndarray | None:
        """Iteration t: the step, then the rules of `IterativeSolver.run` in its order; returns the rows that go
        on (None: all of them)."""
        tic = time.perf_counter()
        step, residual = self._advance(S, t)
        # the bookkeeping reads a diverging run's inf/NaN objective and norms as the one-trial trace does: silently
        with np.errstate(over="ignore", invalid="ignore"):
            return self._rules(batch, S, act, t, ends, monitor, step, residual, tic)

    def _rules(self, batch: ProblemBatch, S: dict[str, Any], act: _Active, t: int, ends: dict[int, _End],
               monitor: Any, step: Step, residual: Any, tic: float) -> np.ndarray | None:
        """The rules of `IterativeSolver.run` after iteration t's ``step``, in its order (see `_iterate`)."""
        be = self.be
        objective = 0.5 * be.host(be.rowdot(residual, residual))
        x = be.host(step.x)
        b = act.ids.size
        step_size = np.asarray(step.step_size, dtype=float)
        if monitor is not None:
            monitor(t, act.ids.copy(), x.copy())
        at_previous: list[tuple[int, str, str, int]] = []  # (row, status, message, n_iter): final row t − 1
        at_current: list[tuple[int, np.ndarray, str, str]] = []  # (row, point, status, message): final row t
        moving = np.ones(b, dtype=bool)
        if step.error is not None:
            for j in np.flatnonzero(step.error != ""):
                at_previous.append((j, "error", step.error[j], t))
                moving[j] = False
        if step.stay is not None:
            for j in np.flatnonzero(step.stay & moving):
                at_previous.append((j, "ok", step.finished[j], t - 1))
                moving[j] = False
        visited = self._cycles(act, x, objective, moving, t, at_previous, at_current)
        improved = visited & (objective < act.best_objective)
        if improved.all():  # a descent step: x_t is the best point of every row (x is never written in place)
            act.best_x, act.best_objective = x, objective
            act.best_iteration.fill(t)
        elif improved.any():
            act.best_x = np.where(improved[:, None], x, act.best_x)
            act.best_objective = np.where(improved, objective, act.best_objective)
            act.best_iteration[improved] = t
        self._stopping(batch, act, x, objective, visited, step.finished, at_current, t)
        act.elapsed = act.elapsed + (time.perf_counter() - tic) / b
        for j, status, message, n_iter in at_previous:
            ends[act.ids[j]] = _End(act.x[j], status, message, n_iter, t - 1, act.last_step[j], act.last_time[j])
        for j, point, status, message in at_current:
            ends[act.ids[j]] = _End(point, status, message, t, t, step_size[j], act.elapsed[j])
        act.x, act.last_step, act.last_time = x, step_size, act.elapsed
        S["x"], S["r"] = step.x, residual
        if not at_previous and not at_current:
            return None
        done = np.zeros(b, dtype=bool)
        done[[end[0] for end in at_previous] + [end[0] for end in at_current]] = True
        return np.flatnonzero(~done)

    def _block(self, batch: ProblemBatch, S: dict[str, Any], act: _Active, t0: int, length: int,
               ends: dict[int, _End], monitor: Any) -> np.ndarray | None:
        """Iterations t0, …, t0 + L − 1 of every trial, then the rules of `_iterate` over the block at once; a
        trial ends at the first iteration at which a rule ends it, as it would one iteration at a time, and what
        it computed beyond is dropped. Only for ``speculative`` solvers (pure steps, no rule of their own).

        Every rule reads the iterates and objectives, which are those of the one-iteration path bit for bit,
        so each decision is the same: the cycle filter's floor min_{s ≤ t−2} f(x_s) and the best point visited
        are running minima along the block, the step test compares x_t with the x_{t−1} of the block, the stall
        rule reads f(x_{t−w}) from the ring of past objectives or the block. Returns the rows that go on."""
        be, solver = self.be, self.solver
        tic = time.perf_counter()
        b, d = act.x.shape
        X, F, steps = np.empty((b, length, d)), np.empty((b, length)), np.empty((b, length))
        with np.errstate(over="ignore", invalid="ignore"):
            for j, t in enumerate(range(t0, t0 + length)):
                step, residual = self._advance(S, t)
                F[:, j] = be.host(be.rowdot(residual, residual))
                X[:, j] = be.host(step.x)
                steps[:, j] = step.step_size
                S["x"], S["r"] = step.x, residual
            F *= 0.5  # ½‖r‖², as `_iterate` computes it (the same rounding: one multiplication)
            flat = X.reshape(b * length, d)
            keys = cycle_keys(flat, self._weights).reshape(b, length, 2)
            act.remember(t0, keys)
            before = np.concatenate([act.last_objective[:, None], F[:, :-1]], axis=1)  # f(x_{t−1})
            floors = np.fmin.accumulate(np.concatenate([act.floor[:, None], before[:, :-1]], axis=1), axis=1)
            cycles = self._repeats(act, keys, F, floors, t0)
            # the stopping rules' clear cases (`_stopping`), every iteration of the block at once
            moves = np.empty_like(X)  # x_t − x_{t−1}
            np.subtract(X[:, 0], act.x, out=moves[:, 0])
            np.subtract(X[:, 1:], X[:, :-1], out=moves[:, 1:])
            norm2 = _squared_norms(flat).reshape(b, length)
            scale = _step_test_factor(solver.tol)
            step2 = np.concatenate([act.step2[:, None], scale * norm2[:, :-1]], axis=1)
            close = ~(_squared_norms(moves.reshape(b * length, d)).reshape(b, length) > step2)
            close |= ~np.isfinite(F)
            close |= norm2 >= act.margin2[:, None]
            window, rate = solver.stall_window, solver.stall_rate
            stall = earlier = None
            if window is not None:  # f(x_{t−w}) for t in the block: the ring (s < t0), then the block
                timeline = np.concatenate([act.objectives[:, np.arange(t0 - window, t0) % window], F], axis=1)
                earlier = timeline[:, :length]
                stall = stalled(F, earlier, rate, window) & (np.arange(t0, t0 + length) >= window)
                close |= stall
            # the best point visited before each iteration of the block (strict improvements; NaN never is one)
            candidate = np.where(F < np.inf, F, np.inf)
            best = np.minimum.accumulate(np.concatenate([act.best_objective[:, None], candidate], axis=1), axis=1)
            improved = candidate < best[:, :-1]
            last = np.maximum.accumulate(np.where(improved, np.arange(length), -1), axis=1)
        share = (time.perf_counter() - tic) / (b * length)  # each trial-iteration's share of the block's time
        stops = np.full(b, length)  # per row: the block index of the iteration whose rule ends it (length: none)
        for i in np.flatnonzero((close | (cycles >= 0)).any(1)):
            for j in np.flatnonzero(close[i] | (cycles[i] >= 0)).tolist():
                t = t0 + j
                if cycles[i, j] >= 0:  # x_t repeats x_s: the run ends at the best point visited before t
                    if j and last[i, j - 1] >= 0:
                        at, value, point = t0 + int(last[i, j - 1]), best[i, j], X[i, last[i, j - 1]]
                    else:
                        at, value, point = int(act.best_iteration[i]), act.best_objective[i], act.best_x[i]
                    message = _cycle_message(t, int(cycles[i, j]), at, value)
                    if at == t - 1:  # the best point is x_{t−1}: it is the final row already
                        ends[act.ids[i]] = _End(X[i, j - 1] if j else act.x[i], "ok", message, t - 1, t - 1,
                                                steps[i, j - 1] if j else act.last_step[i],
                                                act.elapsed[i] + j * share)
                    else:
                        ends[act.ids[i]] = _End(point.copy(), "ok", message, t, t, steps[i, j],
                                                act.elapsed[i] + (j + 1) * share)
                    stops[i] = j
                    break
                verdict = self._exact_rules(batch, act, i, X[i, j], X[i, j - 1] if j else act.x[i],
                                            stall is not None and bool(stall[i, j]),
                                            earlier[i, j] if earlier is not None else np.nan, "")
                if verdict is not None:
                    ends[act.ids[i]] = _End(X[i, j], *verdict, t, t, steps[i, j], act.elapsed[i] + (j + 1) * share)
                    stops[i] = j
                    break
        for j in range(length):
            took_part = stops >= j
            self.active_sizes_.append(int(np.count_nonzero(took_part)))
            if monitor is not None:
                monitor(t0 + j, act.ids[took_part], X[took_part, j].copy())
        # the rows that go on leave the block as the one-iteration path leaves iteration t0 + L − 1
        act.x, act.step2, act.last_objective = X[:, -1], scale * norm2[:, -1], F[:, -1]
        act.floor = np.fmin(floors[:, -1], before[:, -1])
        moved = last[:, -1] >= 0
        if moved.any():
            act.best_x = np.where(moved[:, None], X[np.arange(b), np.maximum(last[:, -1], 0)], act.best_x)
            act.best_objective = np.where(moved, best[:, -1], act.best_objective)
            act.best_iteration = np.where(moved, t0 + last[:, -1], act.best_iteration)
        if window is not None:
            recent = np.arange(max(0, length - window), length)
            act.objectives[:, (t0 + recent) % window] = F[:, recent]
        act.last_step = steps[:, -1]
        act.elapsed = act.elapsed + length * share
        act.last_time = act.elapsed
        going = stops == length
        return None if going.all() else np.flatnonzero(going)

    def _repeats(self, act: _Active, keys: np.ndarray, F: np.ndarray, floors: np.ndarray, t0: int,
                 among: np.ndarray | None = None) -> np.ndarray:
        """Per (row, j) of iterations t = t0 + j (``keys`` and objectives ``F`` (b, L), the keys already stored):
        the first s < t − 1 with x_s = x_t, or −1; only (row, j) in ``among`` are compared (default: all), and with
        the filter of `_cycles` only those whose f(x_t) is not below ``floors`` = min_{s ≤ t−2} f(x_s)."""
        b, length = F.shape
        cycles = np.full((b, length), -1)
        # numpy only: its products are the one-trial BLAS calls, bit-reproducible whatever the batch; a GPU
        # library may choose another kernel as the batch shrinks
        filtered = self.objective_of_x and self.be.name == "numpy"
        candidates = np.ones((b, length), dtype=bool) if among is None else among
        rows, cols = np.nonzero(candidates & ~(F < floors) if filtered else candidates)
        if not rows.size:
            return cycles
        horizon = t0 + length - 2  # s ≤ t − 2 for the block's last t
        history = act.keys[rows, :horizon, 0]
        allowed = np.arange(horizon)[None, :] < (t0 + cols - 1)[:, None]
        hits = ((history == keys[rows, cols, 0][:, None]) & allowed).any(1)
        for i, j in zip(rows[hits], cols[hits]):
            same = np.flatnonzero((act.keys[i, :t0 + j - 1] == keys[i, j]).all(1))
            if same.size:  # else one lane agreed by chance
                cycles[i, j] = same[0]
        return cycles

    def _cycles(self, act: _Active, x: np.ndarray, objective: np.ndarray, moving: np.ndarray, t: int,
                at_previous: list, at_current: list) -> np.ndarray:
        """`CycleDetector.repeat_of` then ``visit`` for the moving rows: a row whose x_t equals an x_s, s < t − 1
        (the first such s), ends at the best point visited (at x_{t−1} without a new row when that is the best);
        returns the rows visited (the others).

        The keys of x_t are compared with those of every x_s, s < t − 1, stored row by row: O(t) per row and
        iteration, vectorised (the one-trial detector's dictionary is O(1) but a Python call per trial). With
        `objective_of_x`, x_t = x_s implies f(x_t) = f(x_s) bit for bit, so a row with f(x_t) below every
        f(x_s), s ≤ t − 2 (``act.floor``) cannot repeat and is not compared: a descent method compares almost
        no rows. A NaN objective is always compared."""
        keys = cycle_keys(x, self._weights)
        act.remember(t, keys)
        repeated = self._repeats(act, keys[:, None], objective[:, None], act.floor[:, None], t, moving[:, None])
        act.floor = np.fmin(act.floor, act.last_objective)  # min over s ≤ t − 1: the floor of iteration t + 1
        act.last_objective = objective
        repeats = np.flatnonzero(repeated[:, 0] >= 0)
        if not repeats.size:
            return moving
        visited = moving.copy()
        for j in repeats:
            visited[j] = False
            message = _cycle_message(t, int(repeated[j, 0]), act.best_iteration[j], act.best_objective[j])
            if act.best_iteration[j] == t - 1:
                at_previous.append((j, "ok", message, t - 1))
            else:
                at_current.append((j, act.best_x[j].copy(), "ok", message))
        return visited

    def _stopping(self, batch: ProblemBatch, act: _Active, x: np.ndarray, objective: np.ndarray,
                  visited: np.ndarray, finished: np.ndarray | None, at_current: list, t: int) -> np.ndarray:
        """`IterativeSolver._stopping`, then the solver's own rule, for the visited rows; returns ‖x_t‖ per row.

        Clear cases are decided from vectorised norms; a row that is not finite, within `EXACT_WINDOW` of the step
        test, near the blow-up scale (‖x_t‖ + ‖x*‖ bounds ‖x_t − x*‖), stalled or finishing by its own rule is
        decided by the one-trial arithmetic (`robust_norm`, the instance's objective). The stall rule reads the
        objectives of the batch, which are the one-trial objectives bit for bit (same residual, same ``ddot``)."""
        tol = self.solver.tol
        window, rate = self.solver.stall_window, self.solver.stall_rate
        stall = None
        if window is not None:
            column = t % window
            earlier = act.objectives[:, column].copy()  # f(x_{t−w}) once t ≥ w
            if t >= window:
                stall = stalled(objective, earlier, rate, window)
            act.objectives[:, column] = objective
        norm2 = _squared_norms(x)
        dx = x - act.x
        # squared norms: NaN and inf fail the step test; ‖x_t − x*‖ ≤ ‖x_t‖ + ‖x*‖ can pass the blow-up
        # scale only where ‖x_t‖ ≥ (1 − w)·blowup − ‖x*‖ (``act.margin``, −1 when every x qualifies)
        close = ~(_squared_norms(dx) > act.step2)
        close |= ~np.isfinite(objective)
        close |= norm2 >= act.margin2
        act.step2 = _step_test_factor(tol) * norm2
        if finished is not None:
            close |= finished != ""
        if stall is not None:
            close |= stall
        close &= visited
        for j in close.nonzero()[0]:
            verdict = self._exact_rules(batch, act, j, x[j], act.x[j], stall is not None and stall[j],
                                        earlier[j] if stall is not None else np.nan,
                                        finished[j] if finished is not None else "")
            if verdict is not None:
                at_current.append((j, x[j], *verdict))
        return norm2

    def _exact_rules(self, batch: ProblemBatch, act: _Active, j: int, xj: np.ndarray, previous: np.ndarray,
                     stall: bool, earlier: float, finished: str) -> tuple[str, str] | None:
        """`IterativeSolver._stopping` and the solver's own rule for row ``j`` at x_t = ``xj`` in the one-trial
        arithmetic (`robust_norm`, the instance's objective): (status, message), or None when the run goes on."""
        tol, factor = self.solver.tol, self.solver.divergence_factor
        with np.errstate(all="ignore"):
            value = float(batch.problems[act.ids[j]].objective(xj))
        if not np.all(np.isfinite(xj)) or not np.isfinite(value):
            return "diverged", "iterate or objective is not finite"
        distance = robust_norm(xj - act.x_star[j])
        if distance > act.blowup[j]:
            return "diverged", f"error {distance:.3g} exceeded {factor:g} x its scale"
        step = robust_norm(xj - previous)
        if step <= tol * robust_norm(previous):
            return "ok", f"converged: step length {step:.3g} below tol={tol:g}"
        window, rate = self.solver.stall_window, self.solver.stall_rate
        if stall and stalled(value, earlier, rate, window):
            return "stalled", stall_message(value, earlier, rate, window)
        if finished:
            return "ok", finished
        return None

    @staticmethod
    def _result(problem: Problem, start: np.ndarray, init_time: float, end: _End) -> Result:
        """The one-trial packaging (`solvers.base._finish`: verdict against the start's objective) of the final
        row; the returned trace holds that row only."""
        trace = Trace(problem)
        if end.iteration > 0:
            trace.record(0, start, init_time)  # read by the verdict (did the objective decrease from x_0?)
            trace.record(end.iteration, end.x, end.time_s, end.step_size)
        else:
            trace.record(0, end.x, end.time_s)
        result = _finish(problem, trace, end.x, end.status, end.message, end.n_iter, end.time_s)
        result.trace = result.trace[-1:]
        return result


# ------------------------------------------------------------------------------------------------ solvers
class BatchedIHT(BatchedSolver):
    """`solvers.hard_thresholding.IHT`: x ← T_k(x − η Aᵀ(Ax − y)), η = step_size or step_scale / L per trial."""

    one_trial = (IHT,)
    speculative = True

    def init(self, S: dict[str, Any], states: list[State]) -> None:
        S["eta"] = self.be.asarray(np.array([state.step_size for state in states], dtype=float))

    def step(self, S: dict[str, Any], t: int) -> Step:
        be = self.be
        x = be.threshold(S["x"] - S["eta"][:, None] * be.rmatvec(S["A"], S["r"]), S["k"])
        return Step(x=x, step_size=be.host(S["eta"]))


class BatchedHTP(BatchedIHT):
    """`solvers.hard_thresholding.HTP`: S = supp T_k(x − μ∇f), the least-squares refit on S; stops when S repeats
    (Foucart's rule)."""

    one_trial = (HTP,)
    speculative = False  # its own rule (the support repeats) ends runs

    def init(self, S: dict[str, Any], states: list[State]) -> None:
        super().init(S, states)
        S["support"] = self.be.zeros(tuple(S["x"].shape), dtype=bool)  # no fit yet: never equal to a top-k set

    def step(self, S: dict[str, Any], t: int) -> Step:
        be = self.be
        mask = be.topk_mask(S["x"] - S["eta"][:, None] * be.rmatvec(S["A"], S["r"]), S["k"])
        stay = be.host((mask == S["support"]).all(1))
        x = be.copy(S["x"])
        moving = np.flatnonzero(~stay)
        if moving.size:
            x[be.index(moving)] = be.lstsq(S["A"], S["y"], mask, moving)
        S["support"] = mask
        finished = _messages(stay.size)
        finished[stay] = "support unchanged (Foucart's stopping rule)"
        return Step(x=x, step_size=be.host(S["eta"]), stay=stay, finished=finished)


class BatchedNIHT(BatchedSolver):
    """`solvers.hard_thresholding.NIHT`: the exact line search along g on supp(x), the safeguard μ ≤ ω when the
    support changes."""

    one_trial = (NIHT,)

    def step(self, S: dict[str, Any], t: int) -> Step:
        be, k, x = self.be, S["k"], S["x"]
        g = -be.rmatvec(S["A"], S["r"])
        flat = be.host(~(g != 0).any(1))  # g = 0: x stays where it is, with step 0
        gamma = be.where((x != 0).any(1)[:, None], x != 0, be.topk_mask(g, k))
        g_gamma = be.where(gamma, g, 0.0)
        direction = be.where((g_gamma != 0).any(1)[:, None], g_gamma, g)
        Ad = be.sparse_product(S["A"], direction)
        numerator, denominator = be.host(be.rowdot(direction, direction)), be.host(be.rowdot(Ad, Ad))
        error = _messages(flat.size)
        error[~flat & (denominator == 0.0)] = "ZeroDivisionError: float division by zero"  # Python's float /
        with np.errstate(all="ignore"):
            mu = numerator / denominator
        mu[flat] = 0.0
        x_new = be.threshold(x + be.asarray(mu)[:, None] * g, k)
        changed = be.host(((x_new != 0) != gamma).any(1)) & ~flat & (error == "")
        if changed.any():
            self._safeguard(S, g, mu, x_new, np.flatnonzero(changed))
        if flat.any():
            rows = be.index(np.flatnonzero(flat))
            x_new[rows] = x[rows]
        return Step(x=x_new, step_size=mu, error=error)

    def _safeguard(self, S: dict[str, Any], g: Any, mu: np.ndarray, x_new: Any, rows: np.ndarray) -> None:
        """`NIHT._safeguard` for ``rows``, in place on ``mu`` and ``x_new``: shrink μ until μ ≤ ω, rows leaving as
        their step is accepted."""
        be, c = self.be, self.solver.c
        shrink = self.solver.kappa * (1.0 - c)
        index = be.index(rows)
        A, x, g, candidate, m, k = S["A"][index], S["x"][index], g[index], x_new[index], mu[rows], S["k"][index]
        for _ in range(MAX_BACKTRACKS):
            dx = candidate - x
            Adx = be.sparse_product(A, dx)
            denominator = be.host(be.rowdot(Adx, Adx))
            with np.errstate(all="ignore"):
                accept = (denominator == 0.0) | (m <= (1.0 - c) * be.host(be.rowdot(dx, dx)) / denominator)
            done = np.flatnonzero(accept)
            mu[rows[done]] = m[done]
            x_new[be.index(rows[done])] = candidate[be.index(done)]
            left = np.flatnonzero(~accept)
            if not left.size:
                return
            keep = be.index(left)
            rows, m, A, x, g, k = rows[left], m[left] / shrink, A[keep], x[keep], g[keep], k[keep]
            candidate = be.threshold(x + be.asarray(m)[:, None] * g, k)
        for value in m:
            log.warning("NIHT safeguard did not accept a step after %d shrinks; taking mu=%.3g", MAX_BACKTRACKS, value)
        mu[rows] = m
        x_new[be.index(rows)] = candidate


class BatchedCoSaMP(BatchedSolver):
    """`solvers.pursuit.CoSaMP`: merge supp T_2k(Aᵀr) with supp x, refit on the union, prune to k."""

    one_trial = (CoSaMP,)

    def step(self, S: dict[str, Any], t: int) -> Step:
        be, x = self.be, S["x"]
        merged = be.topk_mask(be.rmatvec(S["A"], S["r"]), 2 * S["k"]) | (x != 0)
        rows = np.arange(x.shape[0])
        fits = be.lstsq(S["A"], S["y"], merged, rows, self.row_grams(S, rows))
        return Step(x=be.threshold(fits, S["k"]), step_size=np.full(x.shape[0], np.nan))


class BatchedSP(BatchedSolver):
    """`solvers.pursuit.SubspacePursuit`: expand by supp T_k(Aᵀr), refit, prune to k, refit; halts on a repeated
    support or on a residual that does not decrease by more than m·ε·‖y‖."""

    one_trial = (SubspacePursuit,)

    def init(self, S: dict[str, Any], states: list[State]) -> None:
        be, m = self.be, S["A"].shape[1]
        S["support"] = be.zeros(tuple(S["x"].shape), dtype=bool)
        S["fitted"] = be.zeros((S["x"].shape[0],), dtype=bool)  # the one-trial cache has no support yet
        # problem.m * RESIDUAL_RTOL * np.linalg.norm(y), in that order (norm: √(y·y), as numpy computes it)
        S["floor"] = be.asarray((m * RESIDUAL_RTOL) * np.sqrt(be.host(be.rowdot(S["y"], S["y"]))))

    def step(self, S: dict[str, Any], t: int) -> Step:
        be, x, k, r = self.be, S["x"], S["k"], S["r"]
        b = x.shape[0]
        expanded = (x != 0) | be.topk_mask(be.rmatvec(S["A"], r), k)
        pruned = be.topk_mask(be.lstsq(S["A"], S["y"], expanded, np.arange(b), self.row_grams(S, np.arange(b))), k)
        fitted = be.host(S["fitted"])
        same = fitted & be.host((pruned == S["support"]).all(1))
        x_new = be.copy(x)
        moving = np.flatnonzero(~same)
        if moving.size:
            x_new[be.index(moving)] = be.lstsq(S["A"], S["y"], pruned, moving)
        residual = self.residual(S, x_new)
        decrease = _norms(be, r) - _norms(be, residual)
        worse = fitted & ~same & ~(decrease > be.host(S["floor"]))
        S["support"], S["fitted"] = pruned, be.asarray(np.ones(b, dtype=bool))
        finished = _messages(b)
        finished[same] = "support unchanged (subspace pursuit halts)"
        finished[worse] = "residual did not decrease (subspace pursuit halts)"
        return Step(x=x_new, step_size=np.full(b, np.nan), residual=residual, stay=same | worse, finished=finished)


class BatchedOMP(BatchedSolver):
    """`solvers.pursuit.OMP`: one atom per iteration for every trial (the active trials all hold t − 1 atoms at
    iteration t: a trial either adds its atom or leaves), the Cholesky factor extended per trial, OMP's rules."""

    one_trial = (OMP,)
    objective_of_x = False  # its residual y − A_Λ c comes from the active columns, not from x

    def init(self, S: dict[str, Any], states: list[State]) -> None:
        be = self.be
        b, m = S["y"].shape
        k = be.host(S["k"])
        caches = [state.cache for state in states]
        S["floor"] = be.asarray(np.array([c["residual_floor"] for c in caches], dtype=float))
        S["corr_floor"] = be.asarray(np.array([c["correlation_floor"] for c in caches], dtype=float))
        S["Aty"] = be.asarray(np.stack([c["Aty"] for c in caches]))
        if np.any(k >= TRANSPOSED_COPY_MIN_ATOMS):  # the one-trial column-major copy: the same products as alone
            S["At"] = be.contiguous_transpose(S["A"])
        S["r"] = be.copy(S["y"])  # OMP's residual y − A x (its objective is the same ½‖·‖²)
        width = int(k.max())  # buffers as wide as the largest budget; a trial uses its first k columns
        S["L"] = be.zeros((b, width, width))
        S["columns"] = be.zeros((b, m, width))
        S["active"] = be.zeros((b, width), dtype=int)

    def _correlations(self, S: dict[str, Any], k: np.ndarray) -> Any:
        """|Aᵀr| of every trial with the one-trial operand: the column-major copy of A where k ≥
        `TRANSPOSED_COPY_MIN_ATOMS`, the transposed view elsewhere (both, row by row, in a mixed batch)."""
        be = self.be
        copy = k >= TRANSPOSED_COPY_MIN_ATOMS
        if copy.all():
            return abs(be.matvec(S["At"], S["r"]))
        view = abs(be.rmatvec(S["A"], S["r"]))
        return be.where(be.asarray(copy)[:, None], abs(be.matvec(S["At"], S["r"])), view) if copy.any() else view

    def step(self, S: dict[str, Any], t: int) -> Step:
        be, n = self.be, t - 1
        b, d = S["x"].shape
        m = S["y"].shape[1]
        k = be.host(S["k"])
        stay, finished = np.zeros(b, dtype=bool), _messages(b)
        small = _norms(be, S["r"]) <= be.host(S["floor"])
        stay[small] = True
        finished[small] = f"stopped after {n} atoms: the residual is zero up to rounding"
        correlation = self._correlations(S, k)
        j = correlation.argmax(1)
        rows = be.index(np.arange(b))
        chosen = (S["active"][:, :n] == j[:, None]).any(1) | (correlation[rows, j] <= S["corr_floor"])
        chosen = be.host(chosen) & ~stay
        stay[chosen] = True
        finished[chosen] = f"stopped after {n} atoms: the residual is orthogonal to all columns"
        columns, L = S["columns"], S["L"]
        columns[:, :, n] = S["A"][rows, :, j]
        dependent = ~self._extend(columns, L, n) & ~stay
        stay[dependent] = True
        finished[dependent] = f"stopped after {n} atoms: the next column depends on the active ones"
        for _ in np.flatnonzero(dependent):
            log.warning("OMP stopped after %d atoms: the next column is linearly dependent on the active ones", n)
        S["active"][:, n] = j
        active = S["active"][:, :n + 1]
        coef = be.cholesky_solve(L[:, :n + 1, :n + 1], S["Aty"][rows[:, None], active])
        x = be.zeros((b, d))
        x[rows[:, None], active] = coef
        residual = S["y"] - be.matvec(columns[:, :, :n + 1], coef)
        budget = (n + 1 == k) & ~stay
        span = (n + 1 == np.minimum(k, m)) & ~budget & ~stay
        zero = (_norms(be, residual) <= be.host(S["floor"])) & ~budget & ~span & ~stay
        for i in np.flatnonzero(budget):
            finished[i] = f"selected k={k[i]} atoms"
        finished[span] = f"selected m={m} atoms: the active columns span R^m"
        finished[zero] = f"the residual is zero up to rounding after {n + 1} atoms"
        return Step(x=x, step_size=np.full(b, np.nan), residual=residual, stay=stay, finished=finished)

    def _extend(self, columns: Any, L: Any, n: int) -> np.ndarray:
        """`OMP._extend_cholesky` for every trial: row n of L is (w, ℓ), Lw = A_Λᵀa, ℓ = ‖a − A_Λ L⁻ᵀw‖;
        returns, per trial, whether the new column a is independent of the active ones."""
        be = self.be
        atom = columns[:, :, n]
        atom_norm = np.array([robust_norm(a) for a in be.host(atom)])
        orthogonal = atom
        if n:
            active = columns[:, :, :n]
            w = be.solve_lower(L[:, :n, :n], be.rmatvec(active, atom))
            orthogonal = atom - be.matvec(active, be.solve_lower(L[:, :n, :n], w, transposed=True))
            L[:, n, :n] = w
        distance = np.array([robust_norm(v) for v in be.host(orthogonal)])
        L[:, n, n] = be.asarray(distance)
        return distance > DEPENDENCE_RTOL * atom_norm


class BatchedTopkIOBS(BatchedSolver):
    """`solvers.iobs.TopkIOBS` (and `solvers.newton_step.NSIHT`) on least squares: θ ← T_k(θ − γ H⁻¹∇f(θ)) with the
    factor of H = AᵀA + λI of the one-trial ``init`` (a constant Hessian: factorised once per trial)."""

    one_trial = (TopkIOBS, NSIHT)
    speculative = True

    def init(self, S: dict[str, Any], states: list[State]) -> None:
        S["H"] = self.be.factors([state.cache["curvature"].factor for state in states])

    def step(self, S: dict[str, Any], t: int) -> Step:
        be, gamma = self.be, self.solver.newton_step
        theta = S["x"] - gamma * be.factor_solve(S["H"], be.rmatvec(S["A"], S["r"]))
        return Step(x=be.threshold(theta, S["k"]), step_size=np.full(theta.shape[0], float(gamma)))


# ----------------------------------------------------------------------------------------------- registry
#: one-trial solver class -> its batched implementation (exact classes: a subclass may change the algorithm).
BATCHED: dict[type, type[BatchedSolver]] = {
    cls: batched for batched in (BatchedIHT, BatchedNIHT, BatchedHTP, BatchedCoSaMP, BatchedSP, BatchedOMP,
                                 BatchedTopkIOBS) for cls in batched.one_trial}


def batched_for(solver: Any) -> tuple[type[BatchedSolver] | None, str]:
    """The batched implementation of ``solver`` and '' — or None and why it has none (its trials then run one by
    one)."""
    batched = BATCHED.get(type(solver))
    if batched is None:
        return None, f"solver {getattr(solver, 'name', type(solver).__name__)!r} has no batched implementation"
    if getattr(solver, "time_budget", None) is not None:
        return None, "time_budget is a per-trial clock, which batched trials do not have"
    return batched, ""


def run_batched(solver: IterativeSolver, batch: ProblemBatch, backend: str = "numpy",
                device: str | None = None) -> list[Result]:
    """Solve every trial of ``batch`` with the batched twin of ``solver``: one `solvers.base.Result` per trial,
    its trace holding the final row. ``ValueError`` if ``solver`` has no batched twin."""
    batched, reason = batched_for(solver)
    if batched is None:
        raise ValueError(reason)
    return batched(solver, backend=backend, device=device).run(batch)
