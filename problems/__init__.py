"""Problem generators: pure functions of (parameters, seed) returning immutable `Problem` instances."""

from problems.base import DataMatrixProblem, LeastSquaresProblem, Problem
from problems.nonquadratic import (LogisticProblem, PolynomialSensingProblem, make_logistic_regression,
                                   make_quartic_sensing)
from problems.real_data import make_breast_cancer, make_diabetes, make_wine
from problems.regression import make_least_squares, make_paper_gaussian_prior
from problems.sensing import make_compressed_sensing

__all__ = ["DataMatrixProblem", "LeastSquaresProblem", "LogisticProblem", "PolynomialSensingProblem", "Problem",
           "make_breast_cancer", "make_compressed_sensing", "make_diabetes", "make_least_squares",
           "make_logistic_regression", "make_paper_gaussian_prior", "make_quartic_sensing", "make_wine"]
