"""Sparse linear regression: a design with an exactly prescribed condition number, and the I-OBS paper's
Gaussian-prior problem (Wu et al., NeurIPS 2024, §4.1, Figure 1a)."""

from __future__ import annotations

import functools

import numpy as np

from problems.base import LeastSquaresProblem, check
from problems.sensing import SIGNAL_ENSEMBLES, noise_level, sparse_signal
from problems.validation import choice, integer, number, positive


def orthonormal_columns(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """An n×d matrix with orthonormal columns, Haar-distributed (QR of a Gaussian with sign fix)."""
    Q, R = np.linalg.qr(rng.standard_normal((n, d)))
    return Q * np.sign(np.diag(R))


def design_with_spectrum(n: int, d: int, eigenvalues: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """X = U diag(√λ) Vᵀ with Haar U (n×d) and V (d×d), so that XᵀX = V diag(λ) Vᵀ exactly."""
    U = orthonormal_columns(n, d, rng)
    V = orthonormal_columns(d, d, rng)
    return (U * np.sqrt(eigenvalues)) @ V.T


SPECTRA = ("geometric", "linear", "two_level")


def prescribed_spectrum(d: int, kappa: float, shape: str) -> np.ndarray:
    """d eigenvalues from 1 down to 1/κ (so their ratio is exactly κ): geometric spacing, linear spacing, or
    two levels (half at 1, half at 1/κ)."""
    if shape == "geometric":
        return np.geomspace(1.0, 1.0 / kappa, d)
    if shape == "linear":
        return np.linspace(1.0, 1.0 / kappa, d)
    if shape == "two_level":
        return np.where(np.arange(d) < (d + 1) // 2, 1.0, 1.0 / kappa)
    raise ValueError(f"spectrum={shape!r} must be one of {', '.join(SPECTRA)}")


def make_least_squares(
    n: int = 200,
    d: int = 100,
    k_star: int = 10,
    kappa: float = 10.0,
    spectrum: str = "geometric",
    signal: str = "gaussian",
    snr_db: float | None = None,
    noise_std: float = 0.0,
    seed: int = 0,
    name: str = "least_squares",
) -> LeastSquaresProblem:
    """Sparse least squares with n ≥ d and cond(XᵀX) = κ exactly, by construction.

    The eigenvalues of XᵀX are prescribed exactly (geometric spacing from 1 down to 1/κ by default); the
    eigenvectors are Haar-random,
    so the restricted constants of sparse supports vary between instances while the global κ is fixed.

    Parameters
    ----------
    n, d, k_star : int
        Samples, features, nonzeros of x* (n ≥ d, 1 ≤ k* ≤ d).
    kappa : float
        Target condition number of XᵀX, ≥ 1.
    spectrum : {"geometric", "linear", "two_level"}
        Shape of the prescribed eigenvalues of XᵀX between 1 and 1/κ (see `prescribed_spectrum`).
    signal, snr_db, noise_std, seed
        As in `problems.sensing.make_compressed_sensing`.
    """
    integer("d", d, low=1)
    check(isinstance(n, (int, np.integer)) and n >= d, f"n={n} must be an integer >= d={d} (overdetermined regression)")
    integer("k_star", k_star, low=1, high=d, what=f"d={d}")
    number("kappa", kappa, low=1.0)
    choice("spectrum", spectrum, SPECTRA)
    choice("signal", signal, SIGNAL_ENSEMBLES)
    number("noise_std", noise_std, low=0.0)
    rng = np.random.default_rng(seed)
    eigenvalues = prescribed_spectrum(d, kappa, spectrum)
    X = design_with_spectrum(n, d, eigenvalues, rng)
    x_star = sparse_signal(d, k_star, signal, rng)
    clean = X @ x_star
    sigma = noise_level(clean, snr_db, noise_std)
    y = clean + sigma * rng.standard_normal(n) if sigma > 0 else clean
    params = dict(n=n, d=d, k_star=k_star, kappa=kappa, spectrum=spectrum, signal=signal, snr_db=snr_db,
                  noise_std=noise_std)
    return LeastSquaresProblem(name=name, params=params, seed=seed, x_star=x_star, k_star=k_star,
                               A=X, y=y, noise_std=sigma)


def starting_point(d: int, init: str, rng: np.random.Generator) -> np.ndarray:
    """The paper code's start: PyTorch's ``nn.Linear(d, 1)`` default U(−1/√d, 1/√d) (``init="uniform"``), or zeros."""
    bound = 1.0 / np.sqrt(d)
    return rng.uniform(-bound, bound, size=d) if init == "uniform" else np.zeros(d)


def make_paper_gaussian_prior(
    d: int = 128,
    k_star: int = 16,
    n: int = 256,
    init: str = "uniform",
    seed: int = 0,
    name: str = "paper_gaussian",
) -> LeastSquaresProblem:
    """The Gaussian-prior problem of the I-OBS paper (§4.1, Figure 1a).

    θ* ~ N(0, I_d) with all but k* random entries zeroed; X ∈ ℝ^{n×d} with X_ij ~ N(0, 1/n); noiseless
    y = Xθ*. The objective is f(θ) = ½‖Xθ − y‖² (Hessian XᵀX, as in the paper's code). The paper's code
    minimises the MSE (1/n)‖Xθ − y‖² = (2/n)·f, so its updates equal ours with step multiplier 2/n; see
    ``conf/experiment/paper_fig1a.yaml`` and ``shared/paper-notes.md`` §4.3.

    Parameters
    ----------
    init : {"uniform", "zeros"}
        Starting point: PyTorch's ``nn.Linear`` default U(−1/√d, 1/√d) used by the paper's code, or zeros.
    """
    integer("d", d, low=1)
    integer("n", n, low=1)
    integer("k_star", k_star, low=1, high=min(n, d), what=f"min(n, d)={min(n, d)}")
    choice("init", init, ("uniform", "zeros"))
    rng = np.random.default_rng(seed)
    x_star = rng.standard_normal(d)
    x_star[rng.choice(d, size=d - k_star, replace=False)] = 0.0
    X = rng.standard_normal((n, d)) / np.sqrt(n)
    x0 = starting_point(d, init, rng)
    params = dict(d=d, k_star=k_star, n=n, init=init)
    return LeastSquaresProblem(name=name, params=params, seed=seed, x_star=x_star, k_star=k_star, x0=x0,
                               A=X, y=X @ x_star, noise_std=0.0)


@functools.lru_cache(maxsize=2)
def digit_images(side: int = 28) -> np.ndarray:
    """scikit-learn's 1797 handwritten 8×8 digits (shipped inside the package, no download), laid out like
    MNIST: each digit upscaled bilinearly into the central (side − 8)² box of a side×side black frame
    (20×20 inside 28×28, as MNIST centres its digits), rescaled to 0–255; faint pixels (< 25% of 255) are
    zeroed so the images are about as sparse as MNIST's (~150–250 nonzero pixels). Read-only, cached."""
    import scipy.ndimage
    from sklearn.datasets import load_digits

    small = load_digits().images / 16.0 * 255.0
    inner, margin = side - 8, 4
    images = np.zeros((len(small), side, side))
    for out, img in zip(images, small):
        out[margin:margin + inner, margin:margin + inner] = scipy.ndimage.zoom(img, inner / 8, order=1)
    images = np.clip(images, 0.0, 255.0)
    images[images < 0.25 * 255.0] = 0.0
    images.setflags(write=False)
    return images


def make_digit_prior(
    side: int = 28,
    n_factor: float = 2.0,
    init: str = "uniform",
    seed: int = 0,
    name: str = "paper_digits",
) -> LeastSquaresProblem:
    """The I-OBS paper's MNIST-prior problem (§4.1, Figure 1b), with scikit-learn's digits standing in for MNIST.

    θ* is a digit image chosen by ``seed`` (raw 0–255 values, flattened, d = side²; k* = its number of
    nonzero pixels); X ∈ ℝ^{n×d} with n = n_factor·d and X_ij ~ N(0, 1/n); noiseless y = Xθ*. The paper uses
    random MNIST training images (d = 784, n = 1568); no MNIST copy ships inside a registry package, so we
    upscale scikit-learn's 8×8 digits to 28×28 (see `digit_images`) — the README and figure caption say so.
    """
    integer("side", side, low=16, high=64)
    positive("n_factor", n_factor)
    choice("init", init, ("uniform", "zeros"))
    rng = np.random.default_rng(seed)
    images = digit_images(side)
    index = int(rng.integers(len(images)))
    x_star = images[index].ravel()
    d = x_star.size
    n = int(round(n_factor * d))
    X = rng.standard_normal((n, d)) / np.sqrt(n)
    x0 = starting_point(d, init, rng)
    params = dict(side=side, n_factor=n_factor, n=n, d=d, init=init, image_index=index)
    return LeastSquaresProblem(name=name, params=params, seed=seed, x_star=x_star,
                               k_star=int(np.count_nonzero(x_star)), x0=x0, A=X, y=X @ x_star, noise_std=0.0)
