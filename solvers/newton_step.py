"""Newton-step-based hard thresholding (Meng & Zhao, IEEE Trans. Signal Process. 68, 2020; arXiv 2001.07181).

For least squares f(x) = ½‖y − Ax‖² the two algorithms replace IHT's / HTP's steepest-descent direction by a
regularised Newton direction:

    NSIHT:  x_{t+1} = H_k(x_t + λ (AᵀA + εI)⁻¹ Aᵀ(y − Ax_t))
    NSHTP:  S_{t+1} = supp H_k(x_t + λ (AᵀA + εI)⁻¹ Aᵀ(y − Ax_t)),
            x_{t+1} = argmin_{supp z ⊆ S_{t+1}} ‖y − Az‖²

Since ∇²f = AᵀA and −∇f = Aᵀ(y − Ax), the NSIHT update *is* Topk-I-OBS (Wu et al. 2024, eq. 12,
`solvers.iobs.TopkIOBS`) on least squares, with step γ = λ and Hessian damping ε: the I-OBS paper's practical
method coincides on quadratics with this earlier method, and the two classes below are that
parameterisation (their iterates are identical, `tests/test_newton_step.py`). Where they differ is a
non-quadratic f: I-OBS re-forms the Hessian ∇²f(θ_t) at every iterate, while Meng & Zhao define the
direction for least squares only (``requires = {"least_squares"}`` here). With γ = λ = 1 and ε → 0 on a
full-column-rank A the direction reaches the least-squares point in one step, so both land on
H_k(θ_OLS) from any start (notes §T_k(θ_OLS)); NSHTP then refits on that support and stops.

Parameters follow the paper's notation (λ the step, ε the regularisation); the defaults are ours, see the
classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from problems.base import Problem
from problems.validation import number
from solvers._kernels import least_squares_on_support, top_k_indices
from solvers.base import SolverConfigError, State
from solvers.iobs import TopkIOBS

REFERENCE = "Meng & Zhao 2020, Newton-step-based hard thresholding algorithms for sparse signal recovery"


class NSIHT(TopkIOBS):
    """Newton-step-based IHT: x ← H_k(x + λ(AᵀA + εI)⁻¹Aᵀ(y − Ax))  (Meng & Zhao 2020, Algorithm NSIHT).

    Parameters
    ----------
    step_length : float
        λ > 0, the step along the Newton-like direction. Default 1 (the full regularised Newton step).
    epsilon : float
        ε ≥ 0, the regularisation εI added to AᵀA; must be > 0 when AᵀA is singular (m < d). The YAML
        default is the top-level ``newton_damping``, so a sweep with ``newton_damping=1e-3`` runs NSIHT and
        Topk-I-OBS with the same ε. Absolute, so it is not scale-free: rescaling A by a changes AᵀA by a²
        and the relative weight of ε with it (ε ≪ σ_min(AᵀA) or ε ≫ it are the two regimes).
    **common
        ``k``, ``max_iter``, ``tol``, ``time_budget``, ``divergence_factor`` of `IterativeSolver`.

    Notes
    -----
    Exactly `TopkIOBS` with ``newton_step = step_length`` and ``damping = epsilon`` (module docstring): same
    iterates, same cost (one d×d Cholesky factorisation per run, one solve per iteration). The stopping rule is
    the harness's relative-step test; the paper runs a fixed number of iterations or stops on a residual
    tolerance, which the ``tol`` test subsumes here (the iteration reaches a fixed point).
    """

    name = "nsiht"
    references = (REFERENCE + ", NSIHT",)
    requires = frozenset({"least_squares"})
    damping_name = "epsilon"

    def __init__(self, *, step_length: float = 1.0, epsilon: float = 0.0, **common: Any):
        super().__init__(newton_step=step_length, damping=epsilon, **common)
        self.step_length = step_length
        self.epsilon = epsilon

    @classmethod
    def param_names(cls) -> list[str]:
        """The paper's λ and ε (``step_length``, ``epsilon``) stand for Topk-I-OBS's ``newton_step``, ``damping``."""
        return [name for name in super().param_names() if name not in ("newton_step", "damping")]

    def validate(self, problem: Problem) -> None:
        number("step_length", self.step_length, low=0, strict_low=True, error=SolverConfigError)
        number("epsilon", self.epsilon, low=0, error=SolverConfigError)
        super().validate(problem)


class NSHTP(NSIHT):
    """Newton-step-based HTP: the NSIHT support, then least squares on it (Meng & Zhao 2020, Algorithm NSHTP).

    Parameters
    ----------
    step_length, epsilon, **common
        See `NSIHT`.

    Notes
    -----
    S_{t+1} = supp H_k(x_t + λ(AᵀA + εI)⁻¹Aᵀ(y − Ax_t)), x_{t+1} = argmin_{supp z ⊆ S_{t+1}} ‖y − Az‖².
    Like HTP (Foucart's rule), the run stops with status ``ok`` when S_{t+1} = S_t: the next point would be
    the same refit. Per iteration: one Cholesky solve with the run's factor and one k-column least squares.
    """

    name = "nshtp"
    references = (REFERENCE + ", NSHTP",)

    def step(self, problem: Problem, state: State) -> State:
        theta_plus, _ = self.newton_point(problem, state, self.newton_step)
        support = np.sort(top_k_indices(theta_plus, self.k_))
        if np.array_equal(support, state.cache.get("support")):
            state.finished = "support unchanged (HTP's stopping rule)"
            return state
        state.cache["support"] = support
        return State(x=least_squares_on_support(problem.A, problem.y, support), step_size=self.newton_step,
                     cache=state.cache)
