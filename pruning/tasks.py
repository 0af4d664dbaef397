"""A pruning task = a model + its calibration pool + its held-out data + its metric. One base class, one
subclass per model family (vision classifier, causal LM, sentence encoder); `pruning.models` builds them.

Data are stored as tensors with a leading item axis (images, token windows, tokenised paragraphs) and cut into
micro-batches of ``micro_batch`` items on demand, so every family shares the batching, the calibration rounds
(`pruning.data.CalibrationPool`) and the device handling.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pruning import metrics
from pruning.data import CalibrationPool
from pruning.engine import find_blocks

log = logging.getLogger(__name__)
Batch = dict[str, torch.Tensor]


class PruningTask:
    """Base class: batching, rounds and evaluation plumbing.

    Parameters
    ----------
    model : nn.Module
        The model (moved to ``device``, eval mode).
    splits : dict[str, dict[str, Tensor]]
        ``{"calibration": {...}, "heldout": {...}}``: tensors sharing their first (item) axis.
    pool : CalibrationPool
        Which calibration items each I-OBS round uses.
    micro_batch : int
        Items per forward pass.
    device : str
        ``"cpu"`` or ``"cuda"``.
    """

    family: ClassVar[str] = ""
    metric: ClassVar[str] = ""            # the headline metric of `evaluate`
    lower_is_better: ClassVar[bool] = True

    def __init__(self, name: str, model: nn.Module, splits: dict[str, dict[str, torch.Tensor]],
                 pool: CalibrationPool, micro_batch: int = 16, device: str = "cpu") -> None:
        self.name = name
        self.model = model.to(device).eval()
        self.splits = splits
        self.pool = pool
        self.micro_batch = micro_batch
        self.device = device

    @property
    def blocks(self) -> nn.ModuleList:
        """The transformer blocks the engine walks."""
        return find_blocks(self.model)

    def batches(self, split: str, indices: np.ndarray | None = None) -> list[Batch]:
        """Micro-batches (on the device) of ``split``, restricted to item ``indices`` when given (a list: the
        calibration batches of a round are read several times)."""
        return list(self.stream(split, indices))

    def stream(self, split: str, indices: np.ndarray | None = None) -> Iterator[Batch]:
        """The micro-batches of `batches` one at a time, each made when it is needed: a split of images on disk
        (`pruning.data.ImageFiles`) is decoded batch by batch, never all at once. Evaluation reads this."""
        data = self.splits[split]
        n = next(iter(data.values())).shape[0]
        idx = torch.as_tensor(np.arange(n) if indices is None else np.asarray(indices))
        for chunk in idx.split(self.micro_batch):
            yield {k: v[chunk].to(self.device) for k, v in data.items()}

    def round_batches(self, round_: int) -> list[Batch]:
        """Calibration micro-batches of I-OBS round ``round_`` (1-based)."""
        return self.batches("calibration", self.pool.indices(round_))

    def forward(self, batch: Batch) -> Any:
        """Run the model on a batch (the engine stops it at the first block)."""
        raise NotImplementedError

    def loss(self, batch: Batch, split: str = "calibration") -> torch.Tensor:
        """Differentiable task loss of a batch (the I-OBS ``update="task"`` step)."""
        raise NotImplementedError

    def evaluate(self, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        """Metrics on ``split`` (restricted to ``indices``)."""
        raise NotImplementedError


class VisionTask(PruningTask):
    """Image classifier: batches ``{"pixel_values", "labels"}``; metrics NLL and top-1 accuracy."""

    family, metric, lower_is_better = "vision", "accuracy", False

    def forward(self, batch: Batch) -> torch.Tensor:
        out = self.model(pixel_values=batch["pixel_values"])
        return out.logits if hasattr(out, "logits") else out

    def loss(self, batch: Batch, split: str = "calibration") -> torch.Tensor:
        return F.cross_entropy(self.forward(batch).float(), batch["labels"])

    def evaluate(self, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        logits, labels = [], []
        with torch.no_grad():
            for batch in self.stream(split, indices):
                logits.append(self.forward(batch).float().cpu())
                labels.append(batch["labels"].cpu())
        return metrics.classification(torch.cat(logits), torch.cat(labels))


class CausalLMTask(PruningTask):
    """Causal language model: batches ``{"input_ids"}`` of fixed-length windows; metric perplexity."""

    family, metric, lower_is_better = "lm", "ppl", True

    def forward(self, batch: Batch) -> Any:
        return self.model(input_ids=batch["input_ids"], use_cache=False)

    def loss(self, batch: Batch, split: str = "calibration") -> torch.Tensor:
        logits = self.forward(batch).logits[:, :-1].float()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["input_ids"][:, 1:].reshape(-1))

    def evaluate(self, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        total, tokens = 0.0, 0
        with torch.no_grad():
            for batch in self.stream(split, indices):
                n = batch["input_ids"][:, 1:].numel()
                total += float(self.loss(batch)) * n
                tokens += n
        return metrics.perplexity(total, tokens)


class EncoderTask(PruningTask):
    """Sentence encoder (mean-pooled BERT): batches ``{"input_ids", "attention_mask", "index"}``; metric the
    cosine similarity of each pruned embedding to the dense model's embedding of the same text.

    The dense embeddings of both splits are computed once, at construction, before any pruning.
    """

    family, metric, lower_is_better = "encoder", "cosine", False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reference = {split: self.embed_split(split) for split in self.splits}

    def forward(self, batch: Batch) -> Any:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    def embed(self, batch: Batch) -> torch.Tensor:
        """Mean-pooled last hidden state."""
        return metrics.mean_pool(self.forward(batch).last_hidden_state, batch["attention_mask"])

    def embed_split(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([self.embed(b).float().cpu() for b in self.stream(split, indices)])

    def loss(self, batch: Batch, split: str = "calibration") -> torch.Tensor:
        target = self.reference[split][batch["index"].cpu()].to(self.device)
        return 1.0 - F.cosine_similarity(self.embed(batch).float(), target, dim=-1).mean()

    def evaluate(self, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        emb = self.embed_split(split, indices)
        ref = self.reference[split] if indices is None else self.reference[split][torch.as_tensor(indices)]
        return metrics.cosine_fidelity(emb, ref)
