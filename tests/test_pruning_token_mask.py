"""Padded positions never enter a layer's Hessian (nor Wanda's norms, read off its diagonal) — issue #19."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from pruning.engine import PruneSpec, SequentialPruner, capture_inputs  # noqa: E402


class Block(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.fc = nn.Linear(d, d, bias=False)

    def forward(self, hidden):
        return self.fc(hidden)


def test_the_hessian_of_a_padded_batch_is_the_hessian_of_its_real_tokens():
    torch.manual_seed(0)
    d = 6
    blocks = nn.ModuleList([Block(d)])
    real = torch.randn(2, 5, d, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    padded = torch.where(mask.bool()[..., None], real, torch.full_like(real, 1e3))  # garbage in padded slots
    blocks = blocks.double()
    spec = PruneSpec(method="wanda", sparsity=0.5, hessian_dtype=torch.float64)

    pruners = {}
    inputs = capture_inputs(blocks, lambda batch: blocks[0](batch["x"]), [{"x": padded, "attention_mask": mask}])
    SequentialPruner(blocks, spec, progress=False).run(inputs, pruners)
    tokens = real[mask.bool()]
    assert pruners["0.fc"].nsamples == int(mask.sum())
    assert torch.allclose(pruners["0.fc"].H, 2.0 / len(tokens) * tokens.T @ tokens)


def test_without_an_attention_mask_every_position_counts():
    torch.manual_seed(1)
    blocks = nn.ModuleList([Block(4)]).double()
    x = torch.randn(3, 2, 4, dtype=torch.float64)
    pruners = {}
    inputs = capture_inputs(blocks, lambda batch: blocks[0](batch["x"]), [{"x": x}])
    SequentialPruner(blocks, PruneSpec(sparsity=0.5, hessian_dtype=torch.float64), progress=False).run(
        inputs, pruners)
    flat = x.reshape(-1, 4)
    assert pruners["0.fc"].nsamples == 6 and torch.allclose(pruners["0.fc"].H, 2.0 / 6 * flat.T @ flat)
