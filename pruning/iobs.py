"""Iterated I-OBS for networks: our explicit re-specification of the paper's Algorithm 2 (whose box is not
public, see paper-notes §2.6). One-shot pruning is the special case ``rounds = 1``.

Round ``t = 1 … T`` (``Ŵ⁰ = W⁰``, the dense weights; every choice below is an `IOBSConfig` field):

1. **Batch** (``batch``): ``"fresh"`` draws calibration batch ``X_t`` = the ``t``-th disjoint slice of a seeded
   permutation of the calibration pool; ``"fixed"`` reuses ``X_1`` every round.
2. **Dense update** (``update``, ``lr``), skipped in round 1 so that ``T = 1`` *is* one-shot SparseGPT:

   * ``"layer"``: for every layer, the Newton step of the layer-wise loss ``f(Ŵ) = ‖W⁰X − ŴX‖²/N``, whose
     gradient is ``(Ŵ − W⁰)H``, damped by ``lr``: ``W⁺ = Ŵ − lr · H⁻¹∇f = Ŵ + lr (W⁰ − Ŵ)``. ``lr`` multiplies
     the Newton direction; ``lr = 1`` re-prunes the dense weights from the new Hessian, ``lr < 1`` keeps a
     ``(1 − lr)`` share of the previous sparse solution (I-OBS Algorithm 1 with step size ``lr``);
   * ``"task"``: ``task_steps`` steps of plain SGD on the model's task loss (cross-entropy, next-token NLL, or
     1 − cosine to the dense embeddings) over ``X_t`` for all prunable weights at once, without a mask, so
     pruned weights can regrow: ``W⁺ = Ŵ − lr ∇_W L(Ŵ; X_t)``. ``lr`` multiplies the raw gradient (the
     "prune → dense fine-tune → prune again" reading of the paper's Llama protocol);
   * ``"none"``: ``W⁺ = Ŵ``.
3. **Projection** (``projection``): SparseGPT (or exact OBS) applied block by block to ``W⁺`` with the
   Hessian ``H = (2/N) Σ x xᵀ`` of the layer's inputs; ``hessian="fresh"`` uses only ``X_t``,
   ``"accumulate"`` the running mean over ``X_1 … X_t``.
4. **Layer inputs** (``inputs``): ``"pruned"`` takes ``x`` from the model pruned so far in this round
   (SparseGPT's sequential rule); ``"dense"`` from a frozen copy of the dense model.

``first_batches = T`` makes round 1 calibrate on the union of the first ``T`` fresh batches: with ``rounds = 1``
that is the *equal-data* one-shot baseline — SparseGPT (or Wanda) given all the calibration data that I-OBS(T)
sees over its ``T`` rounds, in one Hessian.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable

import torch

from pruning.engine import PruneSpec, SequentialPruner, capture_inputs, dense_copy, named_linears
from pruning.pruners import LayerPruner, PruneReport
from pruning.tasks import Batch, PruningTask

log = logging.getLogger(__name__)

RoundCallback = Callable[[int, list[PruneReport]], None]
CHOICES = {"batch": ("fresh", "fixed"), "update": ("none", "layer", "task"),
           "hessian": ("fresh", "accumulate"), "inputs": ("pruned", "dense"), "projection": ("sparsegpt", "obs")}


@dataclass(frozen=True)
class IOBSConfig:
    """The choices of iterated I-OBS (module docstring). Defaults: the configuration the README reports."""

    rounds: int = 3
    batch: str = "fresh"
    update: str = "layer"
    lr: float = 0.5
    hessian: str = "accumulate"
    inputs: str = "pruned"
    projection: str = "sparsegpt"
    task_steps: int = 1
    first_batches: int = 1

    def validate(self) -> IOBSConfig:
        """Raise ``ValueError`` on an unknown choice or a non-positive round count; return self."""
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"IOBSConfig.{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.first_batches < 1:
            raise ValueError(f"first_batches must be >= 1, got {self.first_batches}")
        return self


def task_step(task: PruningTask, layers: list[torch.nn.Linear], batches: list[Batch], lr: float,
              steps: int = 1) -> list[torch.Tensor]:
    """``steps`` SGD steps ``W ← W − lr ∇_W L`` on the weights of ``layers`` (mean loss over ``batches``);
    returns the float32 master copies the steps were taken on (the dense ``W⁺`` of every layer).

    The steps are taken on float32 master copies, each step written back to the layer for the next forward
    pass: in bfloat16 (the CUDA default) a step ``lr ∇L`` smaller than half a unit in the last place of ``W``
    would round away, step after step, and the weights would never move. Even so a single small step rounds
    away when written back to bfloat16 weights (measured on SmolLM2's first block: one step at lr = 0.01 changes
    2.5% of the bfloat16 weights, 99% of the float32 ones), so the projection must start from the returned
    masters, not from the layers (`IteratedOBS.run` passes them as the projection target).
    """
    weights = [layer.weight for layer in layers]
    masters = [w.detach().to(torch.float32).clone() for w in weights]
    saved = {p: p.requires_grad for p in task.model.parameters()}
    task.model.requires_grad_(False)
    for w in weights:
        w.requires_grad_(True)
    try:
        for _ in range(steps):
            for w in weights:
                w.grad = None
            for batch in batches:
                (task.loss(batch) / len(batches)).backward()
            with torch.no_grad():
                for w, master in zip(weights, masters):
                    master -= lr * w.grad.to(torch.float32)
                    w.copy_(master)  # the forward pass of the next step sees the updated weights
    finally:
        for p, flag in saved.items():
            p.requires_grad_(flag)
            p.grad = None
    return masters


class IteratedOBS:
    """Prune a task's model with ``spec`` (one-shot) or with iterated I-OBS rounds (``cfg.rounds > 1``).

    For ``rounds > 1`` the per-layer projection method is ``cfg.projection`` (``spec.method`` is ignored).
    """

    def __init__(self, spec: PruneSpec, cfg: IOBSConfig = IOBSConfig(rounds=1), progress: bool = True) -> None:
        self.spec = spec
        self.cfg = cfg
        self.progress = progress

    def run(self, task: PruningTask, on_round: RoundCallback | None = None) -> list[PruneReport]:
        """Prune ``task.model`` in place; ``on_round(t, reports)`` is called after every round."""
        cfg = self.cfg.validate()
        spec = self.spec if cfg.rounds == 1 else replace(self.spec, method=cfg.projection)
        blocks = task.blocks
        n_pruned = min(spec.max_blocks or len(blocks), len(blocks))
        layers = {k: l for k, l in named_linears(blocks).items() if int(k.split(".")[0]) < n_pruned}
        keep_W0 = cfg.rounds > 1 and cfg.update == "layer"
        W0 = {k: layer.weight.detach().clone() for k, layer in layers.items()} if keep_W0 else {}
        engine = SequentialPruner(blocks, spec, inputs=cfg.inputs, progress=self.progress,
                                  dense_blocks=dense_copy(blocks) if cfg.inputs == "dense" else None)
        pruners: dict[str, LayerPruner] = {}
        reports: list[PruneReport] = []
        for t in range(1, cfg.rounds + 1):
            if t == 1:  # the first batch, or the union of the first ones (equal-data baseline)
                batches = [b for r in range(1, cfg.first_batches + 1) for b in task.round_batches(r)]
            else:
                batches = task.round_batches(t if cfg.batch == "fresh" else 1)
            target = None
            if t > 1 and cfg.update == "task":
                masters = dict(zip(layers, task_step(task, list(layers.values()), batches, cfg.lr,
                                                     cfg.task_steps)))
                target = self._master_target(masters)
            elif t > 1 and cfg.update == "layer":
                target = self._layer_target(W0)
            if cfg.hessian == "fresh":
                pruners = {}
            # a layer's Hessian outlives its pruning only if a later round accumulates onto it
            keep = cfg.hessian == "accumulate" and t < cfg.rounds
            reports = engine.run(capture_inputs(blocks, task.forward, batches), pruners, target, keep_hessians=keep)
            log.info("round %d/%d: mean calibration error %.4g", t, cfg.rounds,
                     sum(r.calib_error for r in reports) / max(len(reports), 1))
            if on_round is not None:
                on_round(t, reports)
        return reports

    def _layer_target(self, W0: dict[str, torch.Tensor]) -> Callable:
        """W⁺ = Ŵ + lr (W⁰ − Ŵ) in float32 at least: in the weights' bfloat16 it would be rounded (2⁻⁸ relative)
        before the projection, which computes in the Hessian's dtype anyway."""
        lr = self.cfg.lr

        def target(key: str, layer: torch.nn.Linear) -> torch.Tensor:
            W = layer.weight.detach()
            W = W.to(torch.promote_types(W.dtype, torch.float32))
            return W + lr * (W0[key].to(W.device, W.dtype) - W)

        return target

    @staticmethod
    def _master_target(masters: dict[str, torch.Tensor]) -> Callable:
        """The ``task`` update's W⁺: the float32 masters of `task_step`, which bfloat16 layers may have rounded
        back to Ŵ (the layers hold the rounded weights for the forward passes that build the Hessians)."""
        return lambda key, layer: masters[key]
