"""Scale-path fixes of issue #19 on CPU: bfloat16 weights move under the ``task`` update; Hessians are freed
as soon as no later round needs them."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from pruning.engine import PruneSpec, SequentialPruner, capture_inputs  # noqa: E402
from pruning.iobs import task_step  # noqa: E402


class TinyTask:
    """A one-layer regression 'task' with the two members `task_step` uses."""

    def __init__(self, dtype):
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Linear(8, 4, bias=False)).to(dtype)
        self.target = torch.randn(4, 8).to(dtype)

    def loss(self, batch):
        return ((self.model(batch["x"]) - batch["x"] @ self.target.T) ** 2).mean()


def test_small_task_steps_move_bfloat16_weights():
    """Weights near 1 (bfloat16 spacing 2⁻⁷ there) and steps of ~2⁻¹¹: each step alone rounds away, 200 of
    them on the float32 master copy move W as far as float32 SGD does."""
    moved = {}
    for dtype in (torch.bfloat16, torch.float32):
        task = TinyTask(dtype)
        layer = task.model[0]
        with torch.no_grad():
            layer.weight.fill_(1.0)
        batch = {"x": torch.ones(4, 8).to(dtype)}
        grad = 2 * 8 * (8 - task.target.to(torch.float32).sum(1)).abs().max().item() / 4  # dL/dW at W = 1
        task_step(task, [layer], [batch], lr=2 ** -11 / grad, steps=200)
        assert layer.weight.dtype == dtype
        moved[dtype] = (layer.weight.to(torch.float32) - 1.0).abs().max().item()
    assert moved[torch.bfloat16] > 0.5 * moved[torch.float32] > 0


def test_float32_task_steps_are_plain_sgd():
    task = TinyTask(torch.float32)
    layer = task.model[0]
    batch = {"x": torch.randn(16, 8)}
    w = layer.weight.detach().clone().requires_grad_(True)
    loss = ((batch["x"] @ w.T - batch["x"] @ task.target.T) ** 2).mean()
    loss.backward()
    task_step(task, [layer], [batch], lr=0.1, steps=1)
    assert torch.allclose(layer.weight, w.detach() - 0.1 * w.grad)


def test_hessians_are_dropped_when_no_later_round_needs_them():
    torch.manual_seed(2)
    blocks = nn.ModuleList([nn.Sequential(nn.Linear(6, 6)) for _ in range(3)])
    inputs = capture_inputs(blocks, lambda batch: blocks[0](batch["x"]), [{"x": torch.randn(4, 6)}])
    kept, dropped = {}, {}
    SequentialPruner(blocks, PruneSpec(sparsity=0.5), progress=False).run(inputs, kept)
    assert len(kept) == 3 and all(p.H is not None for p in kept.values())
    blocks2 = nn.ModuleList([nn.Sequential(nn.Linear(6, 6)) for _ in range(3)])
    blocks2.load_state_dict(blocks.state_dict())
    SequentialPruner(blocks2, PruneSpec(sparsity=0.5), progress=False).run(inputs, dropped, keep_hessians=False)
    assert dropped == {}
