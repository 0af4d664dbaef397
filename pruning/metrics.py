"""Metrics of a pruned model against its dense self: per-layer reconstruction error, NLL / accuracy,
perplexity and embedding cosine fidelity. Pure functions of tensors or of a model and batches."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

Batch = dict[str, torch.Tensor]


class _ErrorMeter:
    """Forward hook accumulating ``‖(W⁰ − Ŵ) x‖²`` and ``‖W⁰ x‖²`` over a layer's inputs."""

    def __init__(self, layer: nn.Linear, W0: torch.Tensor) -> None:
        self.layer, self.W0 = layer, W0
        self.num = 0.0
        self.den = 0.0

    def __call__(self, module: nn.Module, args: tuple, output: Any) -> None:
        X = args[0].detach().reshape(-1, args[0].shape[-1]).float()
        W0 = self.W0.to(X.device).float()
        self.num += float(((X @ (W0 - self.layer.weight.detach().float()).T) ** 2).sum())
        self.den += float(((X @ W0.T) ** 2).sum())

    def value(self) -> float:
        return self.num / max(self.den, 1e-30)


def layer_errors(layers: dict[str, nn.Linear], dense: dict[str, torch.Tensor],
                 forward: Callable[[Batch], Any], batches: Iterable[Batch]) -> dict[str, float]:
    """Relative reconstruction error ``‖W⁰X − ŴX‖²_F / ‖W⁰X‖²_F`` of every layer on ``batches``, where ``X``
    are the layer's inputs in the *pruned* model (the quantity each layer-wise solver minimises on its
    calibration inputs) and ``W⁰`` the dense weights."""
    meters = {name: _ErrorMeter(layer, dense[name]) for name, layer in layers.items()}
    handles = [layers[n].register_forward_hook(m) for n, m in meters.items()]
    try:
        with torch.no_grad():
            for batch in batches:
                forward(batch)
    finally:
        for h in handles:
            h.remove()
    return {name: m.value() for name, m in meters.items()}


def classification(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Mean negative log-likelihood (nats) and top-1 accuracy."""
    return {"nll": float(F.cross_entropy(logits.float(), labels)),
            "accuracy": float((logits.argmax(-1) == labels).float().mean())}


def perplexity(total_nll: float, n_tokens: int) -> dict[str, float]:
    """Perplexity ``exp(Σ NLL / n_tokens)`` and the mean NLL per token."""
    nll = total_nll / max(n_tokens, 1)
    return {"nll": nll, "ppl": math.exp(nll)}


def cosine_fidelity(emb: torch.Tensor, dense: torch.Tensor) -> dict[str, float]:
    """Mean and minimum cosine similarity between pruned and dense sentence embeddings (1 = unchanged)."""
    cos = F.cosine_similarity(emb.float(), dense.float(), dim=-1)
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min())}


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence-transformers' mean pooling over non-padding tokens."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
