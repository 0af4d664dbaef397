"""Compressed-sensing instances y = A x* (+ noise): sensing ensembles, signal ensembles, noise by SNR.

Every generator is a pure function of its parameters and ``seed``; all randomness goes through one
``np.random.Generator``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from problems.base import LeastSquaresProblem, check
from problems.validation import choice, integer, number

MATRIX_ENSEMBLES = ("gaussian", "rademacher", "dct", "toeplitz")
SIGNAL_ENSEMBLES = ("gaussian", "constant", "uniform")


def sensing_matrix(m: int, d: int, ensemble: str, rng: np.random.Generator, rho: float = 0.0) -> np.ndarray:
    """Draw an m×d sensing matrix.

    Parameters
    ----------
    ensemble : {"gaussian", "rademacher", "dct", "toeplitz"}
        - ``gaussian``: i.i.d. N(0, 1/m) entries, so columns have unit norm in expectation.
        - ``rademacher``: i.i.d. ±1/√m.
        - ``dct``: m distinct random rows of the orthonormal d×d DCT-II matrix (rows stay orthonormal,
          so AAᵀ = I and columns have squared norm ≈ m/d).
        - ``toeplitz``: Gaussian rows with covariance Σ_ij = ρ^|i−j| (an AR(1) process along the row),
          scaled by 1/√m; the correlation between columns i and j is ρ^|i−j|.
    rho : float
        Column correlation of the ``toeplitz`` ensemble, in (−1, 1).
    """
    if ensemble == "gaussian":
        return rng.standard_normal((m, d)) / np.sqrt(m)
    if ensemble == "rademacher":
        return rng.choice(np.array([-1.0, 1.0]), size=(m, d)) / np.sqrt(m)
    if ensemble == "dct":
        check(m <= d, f"matrix=dct needs m <= d (got m={m}, d={d})")
        rows = np.sort(rng.choice(d, size=m, replace=False))
        basis = scipy.fft.dct(np.eye(d), norm="ortho", axis=0)  # orthonormal DCT-II, basis[j] is row j
        return basis[rows]
    if ensemble == "toeplitz":
        check(-1.0 < rho < 1.0, f"rho={rho} must lie in (-1, 1)")
        z = rng.standard_normal((m, d))
        A = np.empty((m, d))
        A[:, 0] = z[:, 0]
        innovation = np.sqrt(1.0 - rho**2)
        for j in range(1, d):  # AR(1) recursion realises Σ = ρ^|i-j| exactly in distribution
            A[:, j] = rho * A[:, j - 1] + innovation * z[:, j]
        return A / np.sqrt(m)
    raise ValueError(f"matrix={ensemble!r} is not a known ensemble; choose one of {', '.join(MATRIX_ENSEMBLES)}")


def sparse_signal(d: int, k_star: int, ensemble: str, rng: np.random.Generator) -> np.ndarray:
    """A k*-sparse vector on a uniformly random support.

    ``gaussian`` values N(0, 1); ``constant`` ±1 with random signs; ``uniform`` values U(−1, 1).
    """
    x = np.zeros(d)
    support = rng.choice(d, size=k_star, replace=False)
    if ensemble == "gaussian":
        values = rng.standard_normal(k_star)
    elif ensemble == "constant":
        values = rng.choice(np.array([-1.0, 1.0]), size=k_star)
    elif ensemble == "uniform":
        values = rng.uniform(-1.0, 1.0, size=k_star)
    else:
        raise ValueError(f"signal={ensemble!r} is not a known ensemble; choose one of {', '.join(SIGNAL_ENSEMBLES)}")
    x[support] = values
    return x


def noise_level(clean: np.ndarray, snr_db: float | None, noise_std: float) -> float:
    """Noise standard deviation from an SNR in dB (relative to the RMS of ``clean``) or given directly."""
    if snr_db is None:
        return float(noise_std)
    rms = np.linalg.norm(clean) / np.sqrt(clean.size)
    return float(rms * 10.0 ** (-snr_db / 20.0))


def validate_sizes(m: int, d: int, k_star: int) -> None:
    """The one-line checks shared by the sensing generators."""
    integer("m", m, low=1)
    integer("d", d, low=1)
    integer("k_star", k_star, low=1, high=d, what=f"d={d}")
    check(k_star <= m, f"k_star={k_star} exceeds m={m}: a k*-sparse signal cannot be recovered from fewer measurements")


def make_compressed_sensing(
    m: int = 64,
    d: int = 128,
    k_star: int = 5,
    matrix: str = "gaussian",
    signal: str = "gaussian",
    rho: float = 0.0,
    normalize_columns: bool = False,
    snr_db: float | None = None,
    noise_std: float = 0.0,
    seed: int = 0,
    name: str = "compressed_sensing",
) -> LeastSquaresProblem:
    """Compressed-sensing instance y = A x* + σ·z, z ~ N(0, I_m).

    Parameters
    ----------
    m, d, k_star : int
        Measurements, dimension and sparsity of x* (1 ≤ k* ≤ min(m, d)).
    matrix : {"gaussian", "rademacher", "dct", "toeplitz"}
        Sensing ensemble, see `sensing_matrix`.
    signal : {"gaussian", "constant", "uniform"}
        Distribution of the nonzero values of x*, see `sparse_signal`.
    rho : float
        Column correlation for ``matrix="toeplitz"`` (ignored otherwise).
    normalize_columns : bool
        Rescale every column of A to unit Euclidean norm.
    snr_db : float, optional
        Signal-to-noise ratio ‖Ax*‖²/(m σ²) in dB; ``None`` for noiseless (unless ``noise_std`` > 0).
    noise_std : float
        Noise standard deviation σ, used when ``snr_db`` is None.
    seed : int
        Seed of the ``np.random.Generator``; the same seed gives the same instance bit for bit.

    Returns
    -------
    LeastSquaresProblem
        With f(x) = ½‖Ax − y‖².
    """
    validate_sizes(m, d, k_star)
    choice("matrix", matrix, MATRIX_ENSEMBLES)
    choice("signal", signal, SIGNAL_ENSEMBLES)
    number("rho", rho, low=-1.0, high=1.0, strict_low=True, strict_high=True)
    number("noise_std", noise_std, low=0.0)
    number("snr_db", snr_db, allow_none=True)
    rng = np.random.default_rng(seed)
    A = sensing_matrix(m, d, matrix, rng, rho=rho)
    if normalize_columns:
        A = A / np.linalg.norm(A, axis=0, keepdims=True)
    x_star = sparse_signal(d, k_star, signal, rng)
    clean = A @ x_star
    sigma = noise_level(clean, snr_db, noise_std)
    y = clean + sigma * rng.standard_normal(m) if sigma > 0 else clean
    params = dict(m=m, d=d, k_star=k_star, matrix=matrix, signal=signal, rho=rho,
                  normalize_columns=normalize_columns, snr_db=snr_db, noise_std=noise_std)
    return LeastSquaresProblem(name=name, params=params, seed=seed, x_star=x_star, k_star=k_star,
                               A=A, y=y, noise_std=sigma)
