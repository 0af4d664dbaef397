"""Non-quadratic problems, where the Hessian varies and Newton-type methods show their local rates.

- `LogisticProblem` / `make_logistic_regression`: ℓ2-regularised logistic regression with a sparse generating
  vector (a realistic objective; its minimiser is exactly sparse only in the noiseless setting, see below).
- `PolynomialSensingProblem` / `make_quartic_sensing`: least squares plus a strongly convex separable
  polynomial centred at x*, whose unconstrained minimiser is exactly x* (Assumptions A1–A4 of Wu et al. 2024
  hold, A4 on bounded sets), as suggested in ``shared/paper-notes.md`` §7.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.special

from problems.base import DataMatrixProblem, check, largest_eigenvalue_gram, readonly
from problems.conditioning import cached, sparse_spectrum_of, spectral_constants
from problems.sparse_spectra import LOWER, UPPER, constant, logistic_hessian_lipschitz_bound
from problems.sensing import MATRIX_ENSEMBLES, SIGNAL_ENSEMBLES, sensing_matrix, sparse_signal, validate_sizes
from problems.validation import choice, integer, number, positive

LABELS = ("soft", "bernoulli")


def perturbed_start(x_star: np.ndarray, init_radius: float | None, rng: np.random.Generator) -> np.ndarray | None:
    """x* + r·u with u uniform on the unit sphere (a dense start at distance exactly r), or None for zeros."""
    if init_radius is None:
        return None
    u = rng.standard_normal(x_star.size)
    return x_star + init_radius * u / np.linalg.norm(u)


def _check_init_radius(init_radius: float | None) -> None:
    check(init_radius is None or (np.isfinite(init_radius) and init_radius >= 0),
          f"init_radius={init_radius} must be a finite number >= 0 or null")


@dataclass(frozen=True, eq=False)
class LogisticProblem(DataMatrixProblem):
    """f(x) = (1/n) Σ_i [log(1 + e^{z_i}) − y_i z_i] + (l2/2)‖x‖²,  z = Ax,  labels y_i ∈ [0, 1].

    Parameters
    ----------
    A : ndarray of shape (n, d)
        Feature matrix.
    y : ndarray of shape (n,)
        Labels in [0, 1]: hard 0/1 labels or soft labels (probabilities); the loss is the cross-entropy.
    l2 : float
        Ridge coefficient ≥ 0.
    x_star_kind : str
        What ``x_star`` is: ``"unconstrained minimiser"`` or ``"minimiser on the generating support"``.

    Notes
    -----
    With σ the logistic function and s = σ(z)(1 − σ(z)):
    ∇f(x) = Aᵀ(σ(Ax) − y)/n + l2·x,  ∇²f(x) = AᵀSA/n + l2·I,  S = diag(s) ⪯ I/4,
    so L = λ_max(AᵀA)/(4n) + l2 is a global smoothness constant (returned by ``smoothness``).
    """

    l2: float = 0.0
    x_star_kind: str = "unconstrained minimiser"

    capabilities: ClassVar[frozenset[str]] = frozenset({"finite_sum"})

    def check_observations(self, y: np.ndarray) -> None:
        check(np.all((y >= 0) & (y <= 1)), "labels y must lie in [0, 1]")

    def objective(self, x: np.ndarray) -> float:
        z = self.A @ x
        return float(np.mean(np.logaddexp(0.0, z) - self.y * z) + 0.5 * self.l2 * (x @ x))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.A.T @ (scipy.special.expit(self.A @ x) - self.y) / self.n_samples + self.l2 * x

    def _curvature_weights(self, x: np.ndarray) -> np.ndarray:
        p = scipy.special.expit(self.A @ x)
        return p * (1.0 - p)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        s = self._curvature_weights(x)
        return (self.A.T * s) @ self.A / self.n_samples + self.l2 * np.eye(self.d)

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.A.T @ (self._curvature_weights(x) * (self.A @ v)) / self.n_samples + self.l2 * v

    def sample_gradient(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Unbiased minibatch gradient A_Bᵀ(σ(A_B x) − y_B)/|B| + l2·x over the rows ``B``."""
        A_B = self.A[rows]
        return A_B.T @ (scipy.special.expit(A_B @ x) - self.y[rows]) / len(rows) + self.l2 * x

    def _smoothness(self) -> float:
        # σ' ≤ 1/4 gives the global bound λ_max(AᵀA)/(4n) + l2.
        return largest_eigenvalue_gram(self.A) / (4.0 * self.n_samples) + self.l2

    def local_constants(self, k: int, radius: float) -> dict[str, dict[str, Any]]:
        """Certified μ, M, L_restricted of ℓ2-regularised logistic regression on the ball ‖x − x*‖₂ ≤ r.

        ∇²f(x) = AᵀSA/n + l2·I with S = diag σ'(a_iᵀx); σ' is even and decreasing in |z|, so on the ball
        S ⪰ diag σ'(|a_iᵀx*| + ‖a_i‖r) gives μ; σ' ≤ 1/4 gives L ≤ λ_max(AᵀA)/(4n) + l2 (``smoothness``);
        M is `logistic_hessian_lipschitz_bound` over all pairs (not only (2k+k*)-sparse ones: a start x0 may be
        dense, and the Newton bound needs M on the segment from x_t to x*).
        """
        A, n, r = self.A, self.A.shape[0], radius
        p = scipy.special.expit(np.abs(A @ self.x_star) + np.linalg.norm(A, axis=1) * r)
        mu = self.l2 + scipy.linalg.eigvalsh((A.T * (p * (1 - p))) @ A / n, subset_by_index=[0, 0])[0]
        M = cached(self, ("logistic_M",), lambda: logistic_hessian_lipschitz_bound(A))
        return {"mu": constant(mu, LOWER, radius=r), "M": constant(M["value"], UPPER, radius=r),
                "L_restricted": constant(self.smoothness(), UPPER, radius=r)}


def restricted_minimiser(problem: LogisticProblem, support: np.ndarray, start: np.ndarray,
                         max_iter: int = 100) -> np.ndarray:
    """argmin_{supp(x) ⊆ T} f(x) by Newton's method with Armijo backtracking on the |T| coordinates of T."""
    x = np.zeros(problem.d)
    x[support] = start[support]
    for _ in range(max_iter):
        g = problem.gradient(x)[support]
        if np.linalg.norm(g) <= 1e-14 * max(1.0, np.linalg.norm(x)):
            return x
        H = problem.hessian(x)[np.ix_(support, support)]
        direction = np.zeros(problem.d)
        direction[support] = -np.linalg.solve(H, g)
        t, f0, slope = 1.0, problem.objective(x), float(g @ direction[support])
        while problem.objective(x + t * direction) > f0 + 1e-4 * t * slope and t > 1e-12:
            t *= 0.5
        x = x + t * direction
    raise RuntimeError(f"Newton on the generating support did not converge in {max_iter} iterations")


def make_logistic_regression(
    n: int = 200,
    d: int = 50,
    k_star: int = 5,
    l2: float = 0.0,
    labels: str = "soft",
    scale: float = 2.0,
    init_radius: float | None = None,
    seed: int = 0,
    name: str = "logistic",
) -> LogisticProblem:
    """Logistic regression with features A_ij ~ N(0, 1) and a k*-sparse generating vector w.

    w has N(0, 1) values on a uniformly random support T, rescaled to ‖w‖ = ``scale`` (so the logits a_iᵀw
    are N(0, scale²)). Labels are ``soft``: y_i = σ(a_iᵀw), the exact class probabilities (the noiseless
    analogue of y = Ax*), or ``bernoulli``: y_i ~ Bernoulli(σ(a_iᵀw)).

    What ``x_star`` is (recorded in ``x_star_kind``):

    - soft labels and l2 = 0: ∇f(w) = Aᵀ(σ(Aw) − y)/n = 0, so x* = w is the unique unconstrained minimiser
      (A1 holds exactly; n ≥ d makes f strictly convex, strongly convex on bounded sets).
    - otherwise the unconstrained minimiser is dense in general (noise in the labels, shrinkage by the ridge),
      so x* is the minimiser of f over vectors supported on T, computed by Newton's method. It is the best
      k*-sparse point on the generating support, *not* a fixed point of sparse Newton-type methods; a distance
      to it that stalls above zero is expected there.

    Parameters
    ----------
    n, d, k_star : int
        Samples, features, nonzeros of w (1 ≤ k* ≤ d).
    l2 : float
        Ridge coefficient ≥ 0; l2 = 0 needs soft labels and n ≥ d (else no unique minimiser).
    labels : {"soft", "bernoulli"}
    scale : float
        ‖w‖₂ > 0, the standard deviation of the logits.
    init_radius : float, optional
        Start at x* + r·u, u uniform on the unit sphere (local-rate experiments); null starts at zero.
    seed : int
        Seed of the ``np.random.Generator``.
    """
    integer("n", n, low=1)
    integer("d", d, low=1)
    integer("k_star", k_star, low=1, high=d, what=f"d={d}")
    number("l2", l2, low=0.0)
    choice("labels", labels, LABELS)
    positive("scale", scale)
    check(l2 > 0 or labels == "soft", "labels='bernoulli' needs l2 > 0 (separable data have no minimiser)")
    check(l2 > 0 or n >= d, f"l2=0 needs n >= d (got n={n}, d={d}) for a unique minimiser; set l2 > 0")
    _check_init_radius(init_radius)
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    w = sparse_signal(d, k_star, "gaussian", rng)
    w *= scale / np.linalg.norm(w)
    p = scipy.special.expit(A @ w)
    y = p if labels == "soft" else (rng.uniform(size=n) < p).astype(float)
    params = dict(n=n, d=d, k_star=k_star, l2=l2, labels=labels, scale=scale, init_radius=init_radius)
    exact = labels == "soft" and l2 == 0
    kind = "unconstrained minimiser" if exact else "minimiser on the generating support"
    problem = LogisticProblem(name=name, params=params, seed=seed, x_star=w, k_star=k_star, A=A, y=y, l2=l2,
                              x_star_kind=kind)
    x_star = w if exact else restricted_minimiser(problem, np.flatnonzero(w), w)
    x0 = perturbed_start(x_star, init_radius, rng)
    return LogisticProblem(name=name, params=params, seed=seed, x_star=x_star, k_star=int(np.count_nonzero(x_star)),
                           x0=x0, A=A, y=y, l2=l2, x_star_kind=kind)


@dataclass(frozen=True, eq=False)
class PolynomialSensingProblem(DataMatrixProblem):
    """f(x) = ½‖Ax − y‖² + Σ_i φ(x_i − x*_i),  φ(t) = ridge·t²/2 + cubic·t³/3 + quartic·t⁴/4,  y = Ax*.

    Notes
    -----
    With δ = x − x*: ∇f = Aᵀ(Ax − y) + φ'(δ), φ'(t) = ridge·t + cubic·t² + quartic·t³, and
    ∇²f = AᵀA + diag(φ''(δ)), φ''(t) = ridge + 2·cubic·t + 3·quartic·t² ≥ ridge − cubic²/(3·quartic).
    Hence f is μ-strongly convex with μ ≥ λ_min(AᵀA) + ridge − cubic²/(3·quartic) > 0, ∇f(x*) = 0 so x* is
    the unique, exactly k*-sparse minimiser, and ∇²f is Lipschitz on bounded sets (not globally: quartic
    growth). The cubic term makes the third derivative at x* nonzero (2·cubic), so Newton's local rate is
    exactly quadratic; with cubic = 0 it would be cubic near x*.
    """

    ridge: float = 1.0
    cubic: float = 0.0
    quartic: float = 1.0

    capabilities: ClassVar[frozenset[str]] = frozenset({"finite_sum"})

    def _penalty_derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """φ(δ), φ'(δ), φ''(δ) elementwise at δ = x − x*."""
        t = x - self.x_star
        phi = t * t * (self.ridge / 2 + t * (self.cubic / 3 + t * self.quartic / 4))
        slope = t * (self.ridge + t * (self.cubic + t * self.quartic))
        return phi, slope, self.ridge + t * (2 * self.cubic + 3 * self.quartic * t)

    def objective(self, x: np.ndarray) -> float:
        r = self.A @ x - self.y
        return 0.5 * float(r @ r) + float(np.sum(self._penalty_derivatives(x)[0]))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.A.T @ (self.A @ x - self.y) + self._penalty_derivatives(x)[1]

    @property
    def gram(self) -> np.ndarray:
        """AᵀA (read-only, computed once)."""
        return self.derived("gram", lambda: readonly(self.A.T @ self.A))

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return self.gram + np.diag(self._penalty_derivatives(x)[2])

    def hvp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return self.A.T @ (self.A @ v) + self._penalty_derivatives(x)[2] * v

    def sample_gradient(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Unbiased minibatch gradient (m/|B|)·A_Bᵀ(A_B x − y_B) + φ'(x − x*) (the penalty is kept whole)."""
        A_B = self.A[rows]
        return (self.n_samples / len(rows)) * (A_B.T @ (A_B @ x - self.y[rows])) + self._penalty_derivatives(x)[1]

    def local_constants(self, k: int, radius: float) -> dict[str, dict[str, Any]]:
        """Certified μ, M, L_restricted of f = ½‖Ax − y‖² + Σφ(x_i − x*_i) on the ball ‖x − x*‖_∞ ≤ r.

        With φ''(t) = ridge + 2c·t + 3q·t² (c cubic, q quartic): ∇²f(x) = AᵀA + diag(φ''(x − x*)), so on the ball
        μ ≥ λ_min(AᵀA) + min_{|t|≤r} φ'', A3's L ≤ max_{|S|=d−k} λ_max((AᵀA)_SS) + max_{|t|≤r} φ'' and, since
        |φ''(t) − φ''(t')| = |t − t'|·|2c + 3q(t + t')|, A4 holds with M = 2|c| + 6q·r (any pair in the ball).
        """
        c, q, ridge, r = self.cubic, self.quartic, self.ridge, radius
        ends = [ridge + 2 * c * t + 3 * q * t * t for t in (-r, r)]
        vertex = -c / (3 * q) if q > 0 else np.inf
        low = min(ends + ([ridge - c * c / (3 * q)] if abs(vertex) <= r else []))
        gram_min = spectral_constants(self)["mu"]["value"] - ridge  # ∇²f(x*) = AᵀA + ridge·I
        out = {"mu": constant(gram_min + low, LOWER, radius=r), "M": constant(2 * abs(c) + 6 * q * r, UPPER, radius=r)}
        gram_max = sparse_spectrum_of(self, self.d - k).lambda_max_upper - ridge if k < self.d else -np.inf
        out["L_restricted"] = constant(max(gram_max + max(ends), 0.0), UPPER, radius=r)
        return out


def make_quartic_sensing(
    m: int = 64,
    d: int = 128,
    k_star: int = 5,
    matrix: str = "gaussian",
    signal: str = "gaussian",
    ridge: float = 1.0,
    cubic: float = 1.0,
    quartic: float = 1.0,
    init_radius: float | None = None,
    seed: int = 0,
    name: str = "quartic",
) -> PolynomialSensingProblem:
    """Noiseless sensing y = Ax* with a strongly convex separable polynomial centred at x* added to ½‖Ax − y‖².

    Parameters
    ----------
    m, d, k_star, matrix, signal
        As in `problems.sensing.make_compressed_sensing` (A and x* are drawn the same way).
    ridge, cubic, quartic : float
        Coefficients of φ(t) = ridge·t²/2 + cubic·t³/3 + quartic·t⁴/4. Convexity of φ needs
        cubic² < 3·ridge·quartic (or cubic = 0 ≤ quartic); strong convexity of f needs ridge > 0 or m ≥ d.
    init_radius : float, optional
        Start at x* + r·u with u uniform on the unit sphere (local-rate experiments); null starts at zero.
    seed : int
        Seed of the ``np.random.Generator``.
    """
    validate_sizes(m, d, k_star)
    check(matrix in MATRIX_ENSEMBLES,
          f"matrix={matrix!r} is not a known ensemble; choose one of {', '.join(MATRIX_ENSEMBLES)}")
    check(signal in SIGNAL_ENSEMBLES,
          f"signal={signal!r} is not a known ensemble; choose one of {', '.join(SIGNAL_ENSEMBLES)}")
    check(all(np.isfinite(v) for v in (ridge, cubic, quartic)), "ridge, cubic and quartic must be finite")
    check(ridge >= 0 and quartic >= 0, f"ridge={ridge} and quartic={quartic} must be >= 0")
    check(cubic == 0 or cubic**2 < 3 * ridge * quartic,
          f"cubic={cubic} makes the penalty nonconvex; need cubic**2 < 3*ridge*quartic = {3 * ridge * quartic:g}")
    check(ridge > 0 or m >= d,
          f"ridge=0 needs m >= d (got m={m}, d={d}) for a strongly convex objective; set ridge > 0")
    _check_init_radius(init_radius)
    rng = np.random.default_rng(seed)
    A = sensing_matrix(m, d, matrix, rng)
    x_star = sparse_signal(d, k_star, signal, rng)
    x0 = perturbed_start(x_star, init_radius, rng)
    params = dict(m=m, d=d, k_star=k_star, matrix=matrix, signal=signal, ridge=ridge, cubic=cubic, quartic=quartic,
                  init_radius=init_radius)
    return PolynomialSensingProblem(name=name, params=params, seed=seed, x_star=x_star, k_star=k_star, x0=x0,
                                    A=A, y=A @ x_star, ridge=ridge, cubic=cubic, quartic=quartic)
