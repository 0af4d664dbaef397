"""A synthetic linear layer with outlier input channels, wrapped as a `PruningTask` so that every pruner and
the iterated I-OBS driver run on it through the same engine as on real models.

Inputs are correlated Gaussians ``x = A z`` (``A = I + U Vᵀ/√d`` with a rank-``d/8`` part) whose first
``n_outliers`` channels are scaled by ``outlier_scale`` -- the "outlier features" of LLM activations
(Dettmers et al. 2022) that make magnitude pruning fail and motivate Wanda. The metric is the relative
reconstruction error ``‖W⁰X − ŴX‖² / ‖W⁰X‖²`` on a split (the layer-wise objective itself).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pruning.data import CalibrationPool
from pruning.tasks import Batch, PruningTask


class LinearBlock(nn.Module):
    """One block holding one prunable layer ``fc``."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class LinearModel(nn.Module):
    """``blocks = [LinearBlock]``: the smallest model the engine can walk."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([LinearBlock(d_in, d_out)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[0](x)


def outlier_inputs(n: int, d: int, n_outliers: int, outlier_scale: float,
                   gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """``n`` correlated input rows of width ``d`` with scaled outlier channels (the mixing is drawn first,
    so two calls with generators in the same state share it)."""
    r = max(d // 8, 1)
    A = torch.eye(d, dtype=dtype) + torch.randn(d, r, generator=gen, dtype=dtype) @ \
        torch.randn(r, d, generator=gen, dtype=dtype) / d ** 0.5
    X = torch.randn(n, d, generator=gen, dtype=dtype) @ A.T
    X[:, :n_outliers] *= outlier_scale
    return X


class SyntheticLayerTask(PruningTask):
    """One ``d_out × d_in`` layer, a calibration pool and a held-out set of input rows; metric ``rel_error``.

    Parameters
    ----------
    d_in, d_out : int
        Layer shape.
    n_calibration, n_heldout : int
        Input rows in the calibration pool and the held-out set.
    batch_size : int
        Rows per calibration round.
    n_outliers, outlier_scale : int, float
        Number and scale of outlier input channels.
    seed : int
        Seed of weights and data.
    dtype : torch.dtype
        float64 for exactness tests.
    """

    family, metric, lower_is_better = "synthetic", "rel_error", True

    def __init__(self, d_in: int = 64, d_out: int = 32, n_calibration: int = 4096, n_heldout: int = 4096,
                 batch_size: int = 256, n_outliers: int = 4, outlier_scale: float = 10.0, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> None:
        gen = torch.Generator().manual_seed(seed)
        model = LinearModel(d_in, d_out).to(dtype)
        with torch.no_grad():
            model.blocks[0].fc.weight.copy_(torch.randn(d_out, d_in, generator=gen, dtype=dtype) / d_in ** 0.5)
        state = gen.get_state()
        X = outlier_inputs(n_calibration + n_heldout, d_in, n_outliers, outlier_scale, gen, dtype)
        gen.set_state(state)
        with torch.no_grad():
            Y = model(X)
        splits = {"calibration": {"x": X[:n_calibration], "y": Y[:n_calibration]},
                  "heldout": {"x": X[n_calibration:], "y": Y[n_calibration:]}}
        super().__init__("synthetic", model, splits, CalibrationPool(n_calibration, batch_size, seed),
                         micro_batch=batch_size)

    @property
    def layer(self) -> nn.Linear:
        return self.model.blocks[0].fc

    def forward(self, batch: Batch) -> Any:
        return self.model(batch["x"])

    def loss(self, batch: Batch, split: str = "calibration") -> torch.Tensor:
        return ((self.forward(batch) - batch["y"]) ** 2).sum(1).mean()

    def evaluate(self, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        num = den = 0.0
        with torch.no_grad():
            for batch in self.stream(split, indices):
                num += float(((self.forward(batch) - batch["y"]) ** 2).sum())
                den += float((batch["y"] ** 2).sum())
        return {"rel_error": num / den}
