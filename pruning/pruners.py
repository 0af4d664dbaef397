"""Layer pruners with one lifecycle: ``pruner = Pruner(layer)`` → ``add_batch(inp)`` (from a forward hook)
→ ``prune(sparsity | n:m) -> PruneReport``, as in SparseGPT's ``SparseGPT`` class.

Every pruner accumulates the layer-wise Hessian ``H = (2/N) Σ_n x_n x_nᵀ`` of the reconstruction loss
``‖W X − Ŵ X‖² / N`` (so the same calibration error can be reported for all methods) and differs only in how
it chooses the mask and the surviving weights:

=============  ==============================================================  ==========================
``magnitude``  smallest ``|W_ij|`` over the whole layer                         Han et al. 2015
``wanda``      smallest ``|W_ij| · ‖X_j‖₂`` within each output row              Sun et al. 2024
``sparsegpt``  column sweep with OBS updates, blocks of 128, 1% dampening      Frantar & Alistarh 2023
``obs``        exact greedy per-row OBS (OBC), small layers only                Frantar & Alistarh 2022
=============  ==============================================================  ==========================
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from pruning import obs
from pruning.masks import Pattern, select

log = logging.getLogger(__name__)

#: method name -> pruner class; filled by ``LayerPruner.__init_subclass__``.
REGISTRY: dict[str, type[LayerPruner]] = {}


@dataclass
class PruneReport:
    """What pruning one layer did: the pattern, the achieved sparsity and the calibration error
    ``‖(W⁺ − Ŵ)X‖² / ‖W⁺X‖²`` relative to the weights ``W⁺`` it was asked to sparsify."""

    layer: str
    method: str
    pattern: str
    sparsity: float
    numel: int
    calib_error: float
    nsamples: int
    time_s: float

    def as_dict(self) -> dict[str, Any]:
        """The report as a flat dict (one row of a results table)."""
        return asdict(self)


class LayerPruner:
    """Base class: Hessian accumulation and the prune-and-write-back step for one ``nn.Linear``.

    Parameters
    ----------
    layer : nn.Linear
        The layer to prune in place.
    name : str
        Its name in reports.
    hessian_dtype : torch.dtype
        Accumulation and solve precision of ``H`` (float32 on GPU, float64 for references).
    percdamp : float
        Dampening ``λ = percdamp · mean(diag H)`` added to ``H`` before inversion (SparseGPT: 0.01).
    blocksize : int
        SparseGPT column block size (128 in the paper).
    """

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            REGISTRY[cls.name] = cls

    def __init__(self, layer: nn.Linear, *, name: str = "", hessian_dtype: torch.dtype = torch.float32,
                 percdamp: float = 0.01, blocksize: int = 128) -> None:
        self.layer = layer
        self.layer_name = name
        self.hessian_dtype = hessian_dtype
        self.percdamp = percdamp
        self.blocksize = blocksize
        self.H: torch.Tensor | None = None
        self.nsamples = 0
        #: real tokens of the micro-batch being fed (`engine.BlockInput.token_mask`); None: every position
        self.token_mask: torch.Tensor | None = None

    def add_batch(self, inp: torch.Tensor) -> None:
        """Fold the layer inputs ``inp`` (``(..., d_in)``) into the running mean ``H = (2/N) Σ x xᵀ``."""
        X = inp.detach().reshape(-1, inp.shape[-1]).to(self.hessian_dtype)
        if self.H is None:
            self.H = torch.zeros(X.shape[1], X.shape[1], dtype=self.hessian_dtype, device=X.device)
        n = X.shape[0]
        self.H *= self.nsamples / (self.nsamples + n)
        self.nsamples += n
        X = (2.0 / self.nsamples) ** 0.5 * X
        self.H += X.T @ X

    def reset(self) -> None:
        """Forget the accumulated Hessian (a new calibration round that does not reuse old batches)."""
        self.H, self.nsamples = None, 0

    def hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        """Forward hook: ``layer.register_forward_hook(pruner.hook)`` feeds every input to `add_batch`, the real
        tokens only when a token mask of the input's (batch, tokens) shape is set."""
        inp = args[0]
        mask = self.token_mask
        if mask is not None and inp.dim() == 3 and tuple(mask.shape) == tuple(inp.shape[:2]):
            inp = inp[mask.to(inp.device)]
        self.add_batch(inp)

    def prune(self, sparsity: float | None = None, n: int = 0, m: int = 0,
              target: torch.Tensor | None = None) -> PruneReport:
        """Sparsify the layer in place and report.

        Parameters
        ----------
        sparsity : float, optional
            Fraction of weights to zero (unstructured); ignored when ``n:m`` is given.
        n, m : int
            N:M pattern: keep ``n`` of every ``m`` consecutive input weights (2:4).
        target : Tensor, optional
            Dense weights ``W⁺`` to project onto the pattern instead of the current weights (the I-OBS
            projection step); the result is written to the layer.
        """
        if self.H is None:
            raise RuntimeError(f"{self.layer_name}: prune() called before add_batch()")
        pattern = Pattern.make(sparsity, n, m)
        source = self.layer.weight.detach() if target is None else target.detach()
        Wt = source.to(self.H.device, self.hessian_dtype, copy=True)
        tick = time.perf_counter()
        W, mask = self.solve(Wt, pattern)
        W = torch.where(mask, torch.zeros_like(W), W)
        self.layer.weight.data.copy_(W.to(self.layer.weight.dtype))
        report = PruneReport(self.layer_name, self.name, pattern.label(), float(mask.float().mean()),
                             mask.numel(), obs.quadratic_error(Wt, W, self.H), self.nsamples,
                             time.perf_counter() - tick)
        log.debug("pruned %s with %s: sparsity %.3f, calib error %.4g", self.layer_name, self.name,
                  report.sparsity, report.calib_error)
        return report

    def solve(self, W: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(Ŵ, mask)`` for target weights ``W``; implemented by each method."""
        raise NotImplementedError


class MagnitudePruner(LayerPruner):
    """Global-per-layer magnitude pruning: zero the smallest ``|W_ij|`` of the whole matrix (N:M: per group)."""

    name = "magnitude"

    def solve(self, W: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, torch.Tensor]:
        return W.clone(), select(W.abs(), pattern)


class WandaPruner(LayerPruner):
    """Wanda (Sun et al. 2024): score ``|W_ij| · ‖X_j‖₂``, compared within each output row (N:M: per group).

    ``‖X_j‖₂ ∝ sqrt(H_jj)`` since ``H_jj = (2/N) Σ_n x_nj²``; the constant factor does not change the mask.
    """

    name = "wanda"

    def solve(self, W: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, torch.Tensor]:
        score = W.abs() * torch.sqrt(torch.diag(self.H)).unsqueeze(0)
        return W.clone(), select(score, pattern, per_row=True)


class SparseGPTPruner(LayerPruner):
    """SparseGPT (Frantar & Alistarh 2023), see `pruning.obs.sparsegpt`."""

    name = "sparsegpt"

    def solve(self, W: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, torch.Tensor]:
        return obs.sparsegpt(W, self.H, pattern, self.blocksize, self.percdamp)


class ExactOBSPruner(LayerPruner):
    """Exact greedy OBS per row (OBC, Frantar & Alistarh 2022), see `pruning.obs.exact_obs`."""

    name = "obs"

    def solve(self, W: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, torch.Tensor]:
        return obs.exact_obs(W, self.H, pattern, self.percdamp)


def make_pruner(method: str, layer: nn.Linear, **options: Any) -> LayerPruner:
    """Build the registered pruner ``method`` for ``layer``; ``ValueError`` for unknown names."""
    if method not in REGISTRY:
        raise ValueError(f"unknown pruning method {method!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[method](layer, **options)
