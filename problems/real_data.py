"""Real-data problems built from the datasets that ship inside scikit-learn (no download, works offline).

- `make_diabetes`: least squares on the diabetes data of Efron, Hastie, Johnstone & Tibshirani (2004, "Least
  Angle Regression", §4), with the 10 main effects or the paper's 64-column quadratic model.
- `make_breast_cancer`: ℓ2-regularised logistic regression on the Wisconsin diagnostic breast-cancer data.
- `make_wine`: ℓ2-regularised logistic regression of wine cultivar 0 against the other two.

The sparse truth of real data is unknown: every instance has ``x_star`` all NaN (``has_truth`` is False, the
error columns of the results are NaN) and ``k_star`` is the *sparsity budget* k the solvers are run with, not
the size of a known support. Measure these runs against the best k-subset objective of `problems.oracle`.

The data are fixed, so the ``seed`` changes nothing; it is kept (and recorded) so every problem takes the same
arguments. Only scikit-learn's bundled ``load_*`` loaders are used, never the ``fetch_*`` downloaders.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import numpy as np

from problems.base import LeastSquaresProblem
from problems.nonquadratic import LogisticProblem
from problems.validation import choice, flag, integer, require

#: The diabetes feature sets: the 10 main effects, or the LARS paper's 64-column quadratic model.
DIABETES_FEATURES = ("linear", "quadratic")

#: The binary diabetes variable: its square is an affine function of itself, so it gets no square column.
BINARY_DIABETES_VARIABLE = "sex"

#: What ``x_star_kind`` says for the logistic instances here (there is no known minimiser to point at).
UNKNOWN_TRUTH = "unknown (real data)"


class Design(NamedTuple):
    """A real-data design: the matrix ``A`` (n×d), the response ``y`` (n,) and the column names (d,)."""

    A: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]


def _frozen(array: np.ndarray) -> np.ndarray:
    out = np.array(array, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=None)
def _bundled(dataset: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(raw features, raw target, feature names) of a dataset bundled with scikit-learn; read-only, read once."""
    from sklearn import datasets

    if dataset == "diabetes":
        bunch = datasets.load_diabetes(scaled=False)  # raw units: age in years, sex coded 1/2, ...
    elif dataset == "breast_cancer":
        bunch = datasets.load_breast_cancer()
    elif dataset == "wine":
        bunch = datasets.load_wine()
    else:  # pragma: no cover - internal call sites only
        raise ValueError(f"unknown bundled dataset {dataset!r}")
    return _frozen(bunch.data), _frozen(bunch.target), tuple(str(name) for name in bunch.feature_names)


def _centre(columns: np.ndarray) -> np.ndarray:
    return columns - columns.mean(axis=0)


def _unit_norm(columns: np.ndarray) -> np.ndarray:
    """Scale centred columns to unit ℓ2 norm (the LARS paper's standardisation)."""
    return columns / np.linalg.norm(columns, axis=0)


def _check_l2(l2: object) -> None:
    # Without the ridge the minimiser need not exist: class 0 of the wine data, for one, is linearly separable.
    require(not isinstance(l2, (bool, np.bool_)) and isinstance(l2, (int, float, np.integer, np.floating))
            and bool(np.isfinite(l2)) and l2 > 0,
            f"l2={l2!r} must be a finite number > 0 (separable classes have no unregularised minimiser)")


def diabetes_design(features: str = "linear", standardize: bool = True) -> Design:
    """The diabetes design of `make_diabetes` with its column names (442 rows; 10 or 64 columns).

    The response is the disease-progression score minus its mean. ``features="linear"`` gives the 10 main
    effects ``age, sex, bmi, bp, s1, ..., s6``; ``"quadratic"`` the 64-column model of the LARS paper (§4):
    the 10 main effects, then the 45 interactions ``a:b`` (a before b in the order above), then the 9 squares
    ``a^2`` of every variable but ``sex`` (binary, so its square is affine in itself: collinear with the
    intercept and the ``sex`` column). Interactions and squares are products of the *centred* main effects
    (standardised ones when ``standardize``), after which every one of the 64 columns is centred again.

    ``standardize=True``: every column is centred and scaled to unit ℓ2 norm, as in the LARS paper (and
    scikit-learn's ``scaled=True`` for the main effects). ``standardize=False``: scikit-learn's raw values
    (``scaled=False``), centred only, so the columns keep their units.
    """
    choice("features", features, DIABETES_FEATURES)
    flag("standardize", standardize)
    raw, target, names = _bundled("diabetes")
    main = _centre(raw)
    if standardize:
        main = _unit_norm(main)
    columns, labels = [main], list(names)
    if features == "quadratic":
        pairs = list(itertools.combinations(range(len(names)), 2))
        squared = [j for j, name in enumerate(names) if name != BINARY_DIABETES_VARIABLE]
        columns += [main[:, [i for i, _ in pairs]] * main[:, [j for _, j in pairs]], main[:, squared] ** 2]
        labels += [f"{names[i]}:{names[j]}" for i, j in pairs] + [f"{names[j]}^2" for j in squared]
    A = _centre(np.hstack(columns))
    if standardize:
        A = _unit_norm(A)
    return Design(A=_frozen(A), y=_frozen(target - target.mean()), names=tuple(labels))


def _classification_design(dataset: str, positive: int, standardize: bool) -> Design:
    """Features (standardised to zero mean and unit variance when asked) and 0/1 labels (1 = class ``positive``)."""
    flag("standardize", standardize)
    raw, target, names = _bundled(dataset)
    A = raw
    if standardize:  # population standard deviation (ddof = 0), like sklearn's StandardScaler
        A = _centre(raw) / raw.std(axis=0)
    return Design(A=_frozen(A), y=_frozen((target == positive).astype(float)), names=names)


def breast_cancer_design(standardize: bool = True) -> Design:
    """The breast-cancer design of `make_breast_cancer`: 569 × 30 features, label 1 = benign, 0 = malignant."""
    return _classification_design("breast_cancer", positive=1, standardize=standardize)


def wine_design(standardize: bool = True) -> Design:
    """The wine design of `make_wine`: 178 × 13 features, label 1 = cultivar 0, 0 = cultivars 1 and 2."""
    return _classification_design("wine", positive=0, standardize=standardize)


def make_diabetes(
    k_star: int = 5,
    features: str = "linear",
    standardize: bool = True,
    seed: int = 0,
    name: str = "diabetes",
) -> LeastSquaresProblem:
    """Sparse least squares f(x) = ½‖Ax − y‖² on the diabetes data (442 patients) of the LARS paper.

    A and y are `diabetes_design` (``features``, ``standardize``): y is the disease progression one year after
    baseline minus its mean (the centring stands in for an intercept); A holds the 10 baseline variables
    (``"linear"``) or the paper's 64-column quadratic model (``"quadratic"``: 10 main effects, 45 pairwise
    interactions, 9 squares), every column centred and, when ``standardize``, scaled to unit ℓ2 norm (as in
    the paper; otherwise raw scikit-learn units, centred only). Standardisation is this option, never applied
    behind its back.

    Parameters
    ----------
    k_star : int
        The sparsity budget k the solvers run with, in [1, d] (d = 10 or 64). The true support is unknown:
        ``x_star`` is all NaN.
    features : {"linear", "quadratic"}
    standardize : bool
        Centre and scale every column to unit ℓ2 norm (True) or centre only (False).
    seed : int
        Unused: the data are fixed. Kept so every problem takes the same arguments.
    """
    choice("features", features, DIABETES_FEATURES)
    columns = 64 if features == "quadratic" else 10
    integer("k_star", k_star, low=1, high=columns, what=f"d={columns} (the sparsity budget)")
    design = diabetes_design(features, standardize)
    n, d = design.A.shape
    params = dict(n=n, d=d, k_star=k_star, features=features, standardize=bool(standardize))
    return LeastSquaresProblem(name=name, params=params, seed=seed, x_star=np.full(d, np.nan), k_star=int(k_star),
                               A=design.A, y=design.y)


def _logistic(design: Design, k_star: int, l2: float, standardize: bool, seed: int, name: str) -> LogisticProblem:
    """The logistic problem of a bundled design, its budget checked against the design's own d."""
    n, d = design.A.shape
    integer("k_star", k_star, low=1, high=d, what=f"d={d} (the sparsity budget)")
    _check_l2(l2)
    params = dict(n=n, d=d, k_star=k_star, l2=l2, standardize=bool(standardize))
    return LogisticProblem(name=name, params=params, seed=seed, x_star=np.full(d, np.nan), k_star=int(k_star),
                           A=design.A, y=design.y, l2=float(l2), x_star_kind=UNKNOWN_TRUTH)


def make_breast_cancer(
    k_star: int = 5,
    l2: float = 1e-3,
    standardize: bool = True,
    seed: int = 0,
    name: str = "breast_cancer",
) -> LogisticProblem:
    """Sparse ℓ2-regularised logistic regression on the Wisconsin diagnostic breast-cancer data.

    f(x) = (1/n) Σ_i [log(1 + e^{a_iᵀx}) − y_i a_iᵀx] + (l2/2)‖x‖² over n = 569 tumours and d = 30 features
    (`breast_cancer_design`): y_i = 1 for benign, 0 for malignant. When ``standardize`` each feature is
    centred and divided by its (population) standard deviation, otherwise the raw values are used. The model
    has no intercept (`LogisticProblem` has none); the solvers start at x0 = 0.

    Parameters
    ----------
    k_star : int
        The sparsity budget k, in [1, 30]; ``x_star`` is unknown (all NaN).
    l2 : float
        Ridge coefficient > 0 (it makes the minimiser exist and unique on every support).
    standardize : bool
        Zero mean and unit variance per feature (True) or raw values (False).
    seed : int
        Unused: the data are fixed. Kept so every problem takes the same arguments.
    """
    return _logistic(breast_cancer_design(standardize), k_star, l2, standardize, seed, name)


def make_wine(
    k_star: int = 3,
    l2: float = 1e-3,
    standardize: bool = True,
    seed: int = 0,
    name: str = "wine",
) -> LogisticProblem:
    """Sparse ℓ2-regularised logistic regression of wine cultivar 0 against cultivars 1 and 2.

    The objective of `make_breast_cancer` on the n = 178 wines and d = 13 chemical measurements of
    `wine_design` (y_i = 1 for the 59 wines of cultivar 0), with the same conventions: features standardised
    to zero mean and unit variance when ``standardize``, no intercept, x0 = 0, ``x_star`` unknown.

    Parameters
    ----------
    k_star : int
        The sparsity budget k, in [1, 13].
    l2 : float
        Ridge coefficient > 0 (cultivar 0 is linearly separable from the rest, so l2 = 0 has no minimiser).
    standardize : bool
        Zero mean and unit variance per feature (True) or raw values (False).
    seed : int
        Unused: the data are fixed. Kept so every problem takes the same arguments.
    """
    return _logistic(wine_design(standardize), k_star, l2, standardize, seed, name)
