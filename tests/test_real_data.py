"""Real-data problems (problems/real_data.py): shapes, centring and standardisation, the LARS quadratic model,
labels, unknown truth, validation and the Hydra configs."""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from problems import LeastSquaresProblem, LogisticProblem, make_breast_cancer, make_diabetes, make_wine
from problems.real_data import breast_cancer_design, diabetes_design, wine_design

from .conftest import CONF


def centred_unit_norm(column: np.ndarray) -> np.ndarray:
    column = column - column.mean()
    return column / np.linalg.norm(column)


@pytest.mark.parametrize("features, d", [("linear", 10), ("quadratic", 64)])
@pytest.mark.parametrize("standardize", [True, False])
def test_diabetes_shapes_centring_and_scaling(features, d, standardize):
    problem = make_diabetes(k_star=4, features=features, standardize=standardize)
    assert isinstance(problem, LeastSquaresProblem)
    assert problem.A.shape == (442, d) and problem.y.shape == (442,) and problem.d == d
    scale = np.abs(problem.A).max(axis=0)
    assert np.all(np.abs(problem.A.mean(axis=0)) <= 1e-12 * scale)  # every column centred
    assert abs(problem.y.mean()) <= 1e-12 * np.abs(problem.y).max()  # the response centred
    norms = np.linalg.norm(problem.A, axis=0)
    if standardize:
        assert np.allclose(norms, 1.0, rtol=1e-12)
    else:
        assert not np.allclose(norms, 1.0)  # raw units: never rescaled behind the user's back


def test_diabetes_linear_matches_scikit_learn():
    raw = load_diabetes(scaled=False)
    problem = make_diabetes(standardize=False)
    assert np.allclose(problem.A, raw.data - raw.data.mean(axis=0), rtol=0, atol=1e-10)
    assert np.allclose(problem.y, raw.target - raw.target.mean(), rtol=0, atol=1e-10)
    # standardised = sklearn's own scaled=True columns (centred, unit l2 norm)
    assert np.allclose(make_diabetes().A, load_diabetes().data, rtol=0, atol=1e-12)


def test_diabetes_quadratic_has_the_64_lars_columns():
    design = diabetes_design("quadratic")
    names = design.names
    main = list(load_diabetes().feature_names)
    assert len(names) == 64 == len(set(names))
    assert list(names[:10]) == main
    assert list(names[10:55]) == [f"{a}:{b}" for a, b in itertools.combinations(main, 2)]
    assert list(names[55:]) == [f"{a}^2" for a in main if a != "sex"]
    assert "sex^2" not in names

    raw = load_diabetes(scaled=False).data
    standardized_main = np.column_stack([centred_unit_norm(c) for c in raw.T])
    bmi, bp, age = main.index("bmi"), main.index("bp"), main.index("age")
    expected = centred_unit_norm(standardized_main[:, bmi] * standardized_main[:, bp])
    assert np.allclose(design.A[:, names.index("bmi:bp")], expected, rtol=0, atol=1e-12)
    expected = centred_unit_norm(standardized_main[:, age] ** 2)
    assert np.allclose(design.A[:, names.index("age^2")], expected, rtol=0, atol=1e-12)
    assert np.linalg.matrix_rank(design.A) == 64  # with sex^2 it would drop (sex is binary)


def test_diabetes_truth_is_unknown_and_k_star_is_the_budget():
    problem = make_diabetes(k_star=7, features="quadratic")
    assert not problem.has_truth and np.all(np.isnan(problem.x_star))
    assert problem.k_star == 7 and problem.true_support.size == 0
    assert np.array_equal(problem.x0, np.zeros(64))
    assert problem.params == dict(n=442, d=64, k_star=7, features="quadratic", standardize=True)


def test_the_seed_does_not_change_the_data():
    a, b = make_diabetes(seed=0), make_diabetes(seed=5)
    assert np.array_equal(a.A, b.A) and np.array_equal(a.y, b.y) and b.seed == 5
    c, e = make_wine(seed=0), make_wine(seed=3)
    assert np.array_equal(c.A, e.A) and np.array_equal(c.y, e.y)


@pytest.mark.parametrize("make, shape, positives", [(make_breast_cancer, (569, 30), 357), (make_wine, (178, 13), 59)])
def test_logistic_problems(make, shape, positives):
    problem = make(k_star=2, l2=0.01)
    assert isinstance(problem, LogisticProblem)
    assert problem.A.shape == shape and problem.l2 == 0.01 and problem.k_star == 2
    assert set(np.unique(problem.y)) == {0.0, 1.0} and problem.y.sum() == positives
    assert np.allclose(problem.A.mean(axis=0), 0.0, atol=1e-12) and np.allclose(problem.A.std(axis=0), 1.0)
    assert not problem.has_truth and np.array_equal(problem.x0, np.zeros(shape[1]))
    assert problem.objective(problem.x0) == pytest.approx(np.log(2.0))
    raw = make(standardize=False)
    assert not np.allclose(raw.A.std(axis=0), 1.0) and np.array_equal(raw.y, problem.y)


def test_labels_follow_the_documented_classes():
    cancer = load_breast_cancer()
    assert list(cancer.target_names) == ["malignant", "benign"]
    assert np.array_equal(breast_cancer_design().y, (cancer.target == 1).astype(float))  # 1 = benign
    assert np.array_equal(wine_design().y, (load_wine().target == 0).astype(float))  # 1 = cultivar 0
    assert np.array_equal(wine_design(standardize=False).A, load_wine().data)


def test_instances_are_immutable():
    problem = make_diabetes()
    with pytest.raises(ValueError):
        problem.A[0, 0] = 1.0
    with pytest.raises(ValueError):
        diabetes_design().y[0] = 1.0


@pytest.mark.parametrize("make, kwargs, word", [
    (make_diabetes, dict(k_star=0), "k_star"),
    (make_diabetes, dict(k_star=11), "k_star"),
    (make_diabetes, dict(k_star=2.5), "k_star"),
    (make_diabetes, dict(k_star=True), "k_star"),
    (make_diabetes, dict(features="cubic"), "features"),
    (make_diabetes, dict(k_star=65, features="quadratic"), "k_star"),
    (make_diabetes, dict(standardize="yes"), "standardize"),
    (make_breast_cancer, dict(k_star=31), "k_star"),
    (make_breast_cancer, dict(l2=0.0), "l2"),
    (make_breast_cancer, dict(l2=-1.0), "l2"),
    (make_breast_cancer, dict(l2=float("nan")), "l2"),
    (make_breast_cancer, dict(standardize=1), "standardize"),
    (make_wine, dict(k_star=14), "k_star"),
    (make_wine, dict(l2=float("inf")), "l2"),
])
def test_bad_parameters_raise_one_line(make, kwargs, word):
    with pytest.raises(ValueError) as error:
        make(**kwargs)
    message = str(error.value)
    assert word in message and "\n" not in message


def test_quadratic_budget_above_ten_is_fine():
    assert make_diabetes(k_star=20, features="quadratic").k_star == 20


@pytest.mark.parametrize("config, make", [("diabetes", make_diabetes), ("diabetes_quadratic", make_diabetes),
                                          ("breast_cancer", make_breast_cancer), ("wine", make_wine)])
def test_hydra_configs_build_their_problems(config, make):
    node = OmegaConf.load(CONF / "problem" / f"{config}.yaml")
    target = f"{make.__module__}.{make.__name__}"
    assert node["_target_"] == target and node["name"] == config
    parameters = set(inspect.signature(make).parameters) - {"seed", "name"}
    assert set(node) - {"_target_", "name"} == parameters  # every parameter declared, nothing extra
    problem = instantiate(node, seed=0)
    assert problem.name == config and problem.k_star == node["k_star"]
    if config == "diabetes_quadratic":
        assert problem.d == 64
