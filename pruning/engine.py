"""The layer-wise engine: walk a model block by block, capture each ``nn.Linear``'s inputs with forward hooks,
prune, and re-run the pruned block so that the next block sees pruned inputs (SparseGPT's sequential driver,
``opt_sequential``, written once for every model family).

The only model-specific knowledge needed is *where the blocks are* (`find_blocks` finds the longest
``nn.ModuleList`` of identical blocks: ``model.layers`` of Llama/OPT/Phi, ``encoder.layer`` of BERT/DeiT, or our
ViT's ``blocks``) and *how to run the model on a batch* (a callable). The inputs of the first block, positional
and keyword (attention masks, rotary embeddings, …), are captured by a pre-hook that stops the forward pass.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from pruning.pruners import LayerPruner, PruneReport, make_pruner

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
#: returns the dense weights W⁺ a layer should be projected from (None: its current weights)
TargetFn = Callable[[str, nn.Linear], torch.Tensor | None]


class _StopForward(Exception):
    """Raised by the capture hook once the first block's inputs are stored."""


@dataclass
class BlockInput:
    """The positional and keyword arguments one micro-batch passes to a block; ``args[0]`` (or the
    ``hidden_states`` keyword) is the hidden state, the rest is reused unchanged by every block.
    ``token_mask`` (batch × tokens, True = a real token) is the batch's attention mask: padded positions are
    ignored by the model's output (masked attention, masked mean pooling), so they must not enter the layer
    Hessians (and with them Wanda's input norms) either."""

    args: tuple
    kwargs: dict[str, Any]
    token_mask: torch.Tensor | None = None

    @property
    def hidden(self) -> torch.Tensor:
        return self.args[0] if self.args else self.kwargs["hidden_states"]

    def with_hidden(self, hidden: torch.Tensor) -> BlockInput:
        if self.args:
            return BlockInput((hidden, *self.args[1:]), self.kwargs, self.token_mask)
        return BlockInput((), {**self.kwargs, "hidden_states": hidden}, self.token_mask)


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The longest ``nn.ModuleList`` whose children share one class and contain ``nn.Linear`` layers."""
    best: nn.ModuleList | None = None
    for module in model.modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        same = len({type(b) for b in module}) == 1
        if same and linears(module[0]) and (best is None or len(module) > len(best)):
            best = module
    if best is None:
        raise ValueError(f"no list of transformer blocks with nn.Linear layers in {type(model).__name__}")
    return best


def linears(block: nn.Module) -> dict[str, nn.Linear]:
    """The prunable layers of a block: every ``nn.Linear``, by qualified name."""
    return {n: m for n, m in block.named_modules() if isinstance(m, nn.Linear)}


def capture_inputs(blocks: nn.ModuleList, forward: Callable[[Batch], Any],
                   batches: Iterable[Batch]) -> list[BlockInput]:
    """Run ``forward`` on each batch until the first block and keep that block's arguments (and the batch's
    ``attention_mask`` as the token mask, when it has one)."""
    stored: list[BlockInput] = []
    mask: list[torch.Tensor | None] = [None]

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        stored.append(BlockInput(args, dict(kwargs), mask[0]))
        raise _StopForward

    handle = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            for batch in batches:
                attention = batch.get("attention_mask")
                mask[0] = None if attention is None else attention.bool()
                try:
                    forward(batch)
                except _StopForward:
                    pass
    finally:
        handle.remove()
    return stored


def run_block(block: nn.Module, inputs: Sequence[BlockInput]) -> list[BlockInput]:
    """Run ``block`` on every stored input and return the inputs of the next block."""
    out = []
    with torch.no_grad():
        for inp in inputs:
            h = block(*inp.args, **inp.kwargs)
            out.append(inp.with_hidden(h[0] if isinstance(h, (tuple, list)) else h))
    return out


@dataclass
class PruneSpec:
    """How to prune each layer: the method, the pattern and the pruner options."""

    method: str = "sparsegpt"
    sparsity: float | None = 0.5
    n: int = 0
    m: int = 0
    percdamp: float = 0.01
    blocksize: int = 128
    hessian_dtype: torch.dtype = torch.float32
    max_blocks: int | None = None


class SequentialPruner:
    """Prune every linear layer of every block, block by block, from calibration batches.

    Parameters
    ----------
    blocks : nn.ModuleList
        The model's blocks, pruned in place.
    spec : PruneSpec
        Method and pattern.
    inputs : {"pruned", "dense"}
        Take each block's calibration inputs from the partially pruned model (SparseGPT's sequential rule) or
        from ``dense_blocks`` (the unpruned model).
    dense_blocks : nn.ModuleList, optional
        A copy of the dense blocks; required for ``inputs="dense"``.
    progress : bool
        Show a progress bar over blocks.
    """

    def __init__(self, blocks: nn.ModuleList, spec: PruneSpec, *, inputs: str = "pruned",
                 dense_blocks: nn.ModuleList | None = None, progress: bool = True) -> None:
        self.blocks = blocks
        self.spec = spec
        self.inputs = inputs
        self.dense_blocks = dense_blocks
        self.progress = progress

    def run(self, first_inputs: list[BlockInput], pruners: dict[str, LayerPruner] | None = None,
            target: TargetFn | None = None, keep_hessians: bool = True) -> list[PruneReport]:
        """Prune the blocks (the first ``spec.max_blocks`` of them when set); ``pruners`` (name → pruner)
        carries Hessians across calls; ``target`` gives the dense weights each layer is projected from.
        ``keep_hessians=False`` drops each layer's pruner (and its d_in × d_in Hessian) once the layer is
        pruned, so peak memory holds one block's Hessians, not the whole model's (≈ 8.5 GB for Phi-1.5)."""
        if self.inputs not in ("pruned", "dense"):
            raise ValueError(f"inputs must be 'pruned' or 'dense', got {self.inputs!r}")
        if self.inputs == "dense" and self.dense_blocks is None:
            raise ValueError("inputs='dense' needs dense_blocks")
        pruners = {} if pruners is None else pruners
        stream, reports = first_inputs, []
        n_blocks = min(self.spec.max_blocks or len(self.blocks), len(self.blocks))
        for i in tqdm(range(n_blocks), desc=f"prune {self.spec.method}", disable=not self.progress):
            source = self.dense_blocks[i] if self.inputs == "dense" else self.blocks[i]
            reports += self._prune_block(i, source, stream, pruners, target)
            if not keep_hessians:
                for name in linears(self.blocks[i]):
                    pruners.pop(f"{i}.{name}", None)
            stream = run_block(source, stream)  # the pruned block, or the dense copy for inputs="dense"
        return reports

    def _prune_block(self, i: int, source: nn.Module, stream: list[BlockInput],
                     pruners: dict[str, LayerPruner], target: TargetFn | None) -> list[PruneReport]:
        """Capture the inputs of ``source``'s layers on ``stream`` and prune block ``i``'s layers."""
        layers = linears(self.blocks[i])
        src = linears(source)
        spec = self.spec
        for name, layer in layers.items():
            key = f"{i}.{name}"
            if key not in pruners:
                pruners[key] = make_pruner(spec.method, layer, name=key, hessian_dtype=spec.hessian_dtype,
                                           percdamp=spec.percdamp, blocksize=spec.blocksize)
        block_pruners = [pruners[f"{i}.{name}"] for name in layers]
        handles = [src[name].register_forward_hook(p.hook) for name, p in zip(layers, block_pruners)]
        try:
            for inp in stream:  # one input at a time, so each pruner knows which tokens are real
                for pruner in block_pruners:
                    pruner.token_mask = inp.token_mask
                run_block(source, [inp])
        finally:
            for pruner in block_pruners:
                pruner.token_mask = None
            for h in handles:
                h.remove()
        reports = []
        for name, layer in layers.items():
            key = f"{i}.{name}"
            W = None if target is None else target(key, layer)
            reports.append(pruners[key].prune(spec.sparsity, spec.n, spec.m, target=W))
        return reports


def dense_copy(blocks: nn.ModuleList) -> nn.ModuleList:
    """A frozen deep copy of the blocks (the dense reference for ``inputs='dense'``)."""
    return copy.deepcopy(blocks).requires_grad_(False)


def named_linears(blocks: nn.ModuleList) -> dict[str, nn.Linear]:
    """All prunable layers of all blocks, keyed ``"<block>.<name>"`` as in the reports."""
    return {f"{i}.{n}": m for i, b in enumerate(blocks) for n, m in linears(b).items()}
