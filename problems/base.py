"""The `Problem` contract: an immutable smooth objective with a known sparse minimiser.

A problem is built by a generator from ``(parameters, seed)`` and nothing else, so the same seed gives the
same instance bit for bit. Solvers see only the methods below; the harness also reads ``x_star`` to measure
the error of every iterate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Hashable, Mapping

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from problems.validation import require


def readonly(array: np.ndarray) -> np.ndarray:
    """Return a C-contiguous float64 copy of ``array`` that cannot be written to."""
    out = np.array(array, dtype=np.float64, order="C", copy=True)
    out.setflags(write=False)
    return out


#: ``check(condition, message)``: the one-line ``ValueError`` of `problems.validation` (one implementation).
check = require


def check_finite(name: str, array: np.ndarray) -> None:
    """Refuse arrays holding NaN or inf, naming the offending array."""
    check(np.all(np.isfinite(array)), f"{name} contains NaN or inf values; all entries must be finite")


def design_arrays(A: np.ndarray, y: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a design ``A`` (m×d) and observations ``y`` (m,) and return read-only float copies.

    Shared by every problem built on a data matrix; each failure is a one-line ``ValueError``.
    """
    A, y = np.asarray(A), np.asarray(y)
    check(A.ndim == 2 and A.shape[0] > 0, f"A must be a non-empty 2-D array, got shape {A.shape}")
    check(A.shape[1] == d, f"A has {A.shape[1]} columns but x_star has {d} entries")
    check(y.shape == (A.shape[0],), f"y has shape {y.shape}, expected ({A.shape[0]},) to match A")
    check_finite("A", A)
    check_finite("y", y)
    return readonly(A), readonly(y)


def largest_eigenvalue_gram(A: np.ndarray) -> float:
    """λ_max(AᵀA) = σ_max(A)², for small A as the largest eigenvalue of the smaller Gram matrix (AAᵀ or AᵀA,
    LAPACK ``syevr`` for that one eigenvalue: 2-3x cheaper than the singular values, and exact to ε·λ_max, the
    accuracy of σ_max² itself), and by Lanczos (ARPACK) otherwise.

    The Lanczos start vector is fixed so the value is deterministic. A Gram matrix that overflows falls back to
    the singular values.
    """
    if min(A.shape) <= 300:
        with np.errstate(over="ignore", invalid="ignore"):
            gram = A @ A.T if A.shape[0] <= A.shape[1] else A.T @ A
        if np.isfinite(gram).all():
            n = gram.shape[0]
            return float(scipy.linalg.eigvalsh(gram, subset_by_index=[n - 1, n - 1], driver="evr",
                                               check_finite=False)[0])
        return float(scipy.linalg.svdvals(A)[0] ** 2)
    v0 = np.ones(min(A.shape)) / np.sqrt(min(A.shape))
    sigma = scipy.sparse.linalg.svds(A, k=1, return_singular_vectors=False, v0=v0)
    return float(sigma[0] ** 2)


@dataclass(frozen=True, eq=False)
class Problem:
    """A smooth objective f: ℝᵈ → ℝ whose minimiser ``x_star`` is ``k_star``-sparse.

    Parameters
    ----------
    name : str
        Short identifier of the generator (``"cs_gaussian"``, ``"least_squares"``, ...).
    params : Mapping
        The generator parameters the instance was built from (they become ``p_<name>`` result columns).
    seed : int
        The seed of the ``np.random.Generator`` that drew the instance.
    x_star : ndarray of shape (d,)
        The sparse target (the minimiser for noiseless instances).
    k_star : int
        Number of nonzeros of ``x_star``.
    x0 : ndarray of shape (d,), optional
        The common starting point of all iterative solvers (zeros by default).

    Notes
    -----
    Subclasses implement ``objective``, ``gradient`` and ``hessian``; ``hvp`` defaults to a dense product.
    ``hessian_is_constant`` is true for quadratics, which lets second-order solvers factorise once per run.
    ``capabilities`` names optional structure solvers may rely on (``"least_squares"`` exposes ``A``, ``y``).
    """

    name: str
    params: Mapping[str, Any]
    seed: int
    x_star: np.ndarray
    k_star: int
    x0: np.ndarray | None = field(default=None)

    hessian_is_constant: ClassVar[bool] = False
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "x_star", readonly(self.x_star))
        x0 = np.zeros_like(self.x_star) if self.x0 is None else self.x0
        check(np.shape(x0) == self.x_star.shape, f"x0 has shape {np.shape(x0)}, expected {self.x_star.shape}")
        object.__setattr__(self, "x0", readonly(x0))
        object.__setattr__(self, "params", dict(self.params))

    @property
    def d(self) -> int:
        """Dimension of the parameter vector."""
        return int(self.x_star.shape[0])

    @property
    def has_truth(self) -> bool:
        """Whether ``x_star`` is known (user data may come without it; it is then all NaN)."""
        return bool(np.all(np.isfinite(self.x_star)))

    def derived(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per key for this instance: the project's one cache of derived constants (L, μ,
        restricted constants, the oracle, ...; `problems.conditioning.cached` reads and writes it). Kept in the
        instance's own ``__dict__`` — the instance is immutable, so a derived value never goes stale, and it
        dies with the instance."""
        store = self.__dict__.setdefault("_derived", {})
        if key not in store:
            store[key] = compute()
        return store[key]

    @property
    def true_support(self) -> np.ndarray:
        """Sorted indices of the nonzeros of ``x_star`` (empty when the truth is unknown)."""
        return self.derived("true_support", lambda: np.flatnonzero(self.x_star) if self.has_truth
                            else np.array([], dtype=int))

    def objective(self, x: np.ndarray) -> float:
        """f(x)."""
        raise NotImplementedError

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """∇f(x), shape (d,)."""
        raise NotImplementedError

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """∇²f(x), dense, shape (d, d)."""
        raise NotImplementedError

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Hessian-vector product ∇²f(x) v."""
        return self.hessian(x) @ v

    def smoothness(self) -> float:
        """L, the largest Hessian eigenvalue used for the default 1/L step sizes (computed once, cached)."""
        return self.derived("smoothness", self._smoothness)

    def _smoothness(self) -> float:
        # Generic problems: λ_max of the Hessian at x0; quadratics override with the exact constant.
        return float(scipy.linalg.eigvalsh(self.hessian(self.x0), subset_by_index=[self.d - 1, self.d - 1])[0])

    def constants(self) -> dict[str, Any]:
        """Restricted constants of the instance with how each was obtained (see ``problems.conditioning``)."""
        from problems.conditioning import instance_constants

        return instance_constants(self)


@dataclass(frozen=True, eq=False)
class DataMatrixProblem(Problem):
    """A problem built on a data matrix: fields ``A`` (n×d) and ``y`` (n,), validated by `design_arrays` and
    stored as read-only copies; ``n_samples`` is the number of rows. Subclasses add their own checks of the
    observations in `check_observations`."""

    A: np.ndarray = field(default=None)  # type: ignore[assignment]
    y: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        super().__post_init__()
        A, y = design_arrays(self.A, self.y, self.d)
        self.check_observations(y)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "y", y)

    def check_observations(self, y: np.ndarray) -> None:
        """Raise a one-line ``ValueError`` when ``y`` is not valid for this problem (default: any finite y)."""

    @property
    def n_samples(self) -> int:
        """Number of samples / measurements (rows of A)."""
        return int(self.A.shape[0])


@dataclass(frozen=True, eq=False)
class LeastSquaresProblem(DataMatrixProblem):
    """f(x) = ½‖Ax − y‖², the objective of compressed sensing and linear regression.

    Parameters
    ----------
    A : ndarray of shape (m, d)
        Design / sensing matrix.
    y : ndarray of shape (m,)
        Observations ``y = A x_star + noise``.
    noise_std : float
        Standard deviation of the Gaussian noise added to ``A x_star`` (0 for noiseless instances).

    Notes
    -----
    ∇f(x) = Aᵀ(Ax − y) and ∇²f = AᵀA (constant, computed once and cached). As a finite sum over the m rows,
    ``sample_gradient`` returns the unbiased minibatch estimate (m/|B|) A_Bᵀ(A_B x − y_B).
    """

    noise_std: float = 0.0

    hessian_is_constant: ClassVar[bool] = True
    capabilities: ClassVar[frozenset[str]] = frozenset({"least_squares", "finite_sum"})

    @property
    def m(self) -> int:
        """Number of measurements (rows of A)."""
        return self.n_samples

    def residual(self, x: np.ndarray) -> np.ndarray:
        """r = Ax − y."""
        return self.A @ x - self.y

    def objective(self, x: np.ndarray) -> float:
        r = self.residual(x)
        return 0.5 * float(r @ r)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.A.T @ self.residual(x)

    @property
    def gram(self) -> np.ndarray:
        """AᵀA, the constant Hessian (read-only, computed once)."""
        return self.derived("gram", lambda: readonly(self.A.T @ self.A))

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return self.gram

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.A.T @ (self.A @ v)

    def _smoothness(self) -> float:
        # L = λ_max(AᵀA), exact.
        return largest_eigenvalue_gram(self.A)

    def sample_gradient(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Unbiased minibatch gradient (m/|B|)·A_Bᵀ(A_B x − y_B) over the rows ``B``."""
        A_B = self.A[rows]
        return (self.m / len(rows)) * (A_B.T @ (A_B @ x - self.y[rows]))
