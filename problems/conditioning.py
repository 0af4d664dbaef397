"""Constants of a problem instance (μ, L, M, ...), each labelled with how it was obtained.

Every entry of the returned dict is ``{"value": float, "how": "exact" | "upper bound" | "sampled lower bound"
| "estimate"}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from problems.base import Problem


def constant(value: float, how: str) -> dict[str, Any]:
    """One labelled constant."""
    return {"value": float(value), "how": how}


def instance_constants(problem: Problem) -> dict[str, dict[str, Any]]:
    """μ = λ_min(∇²f), L = λ_max(∇²f) and the Hessian-Lipschitz constant M of a quadratic (M = 0).

    For problems whose Hessian varies, μ and L are evaluated at x* and labelled ``estimate``.
    """
    H = problem.hessian(problem.x_star)
    eigenvalues = scipy.linalg.eigvalsh(H)
    how = "exact" if problem.hessian_is_constant else "estimate"
    mu, L = eigenvalues[0], eigenvalues[-1]
    out = {"mu": constant(mu, how), "L": constant(L, how),
           "condition_number": constant(L / mu if mu > 0 else np.inf, how)}
    if problem.hessian_is_constant:
        out["M"] = constant(0.0, "exact")
    return out
