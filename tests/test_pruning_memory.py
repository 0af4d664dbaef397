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


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_task_update_is_projected_from_its_float32_step(monkeypatch, dtype):
    """Round 2 of I-OBS with the ``task`` update: one small SGD step, far below half a bfloat16 unit of the
    weights, rounds away when written to bfloat16 layers (they keep round 1's Ŵ); the projection must start from
    the float32 step (the masters of `task_step`), not from the layer, or a GPU run would be one-shot SparseGPT
    again. In float32 the layer took the step and the target is the layer's weight itself."""
    from pruning.engine import SequentialPruner
    from pruning.iobs import IOBSConfig, IteratedOBS
    from pruning.synthetic import SyntheticLayerTask

    calls = []  # per round: the layer's weights when its projection starts and when it ends, and the target
    run = SequentialPruner.run

    def spy(self, inputs, pruners, target=None, **options):
        layer = self.blocks[0].fc
        start = layer.weight.detach().to(torch.float32).clone()
        aim = None if target is None else target("0.fc", layer).clone()
        reports = run(self, inputs, pruners, target, **options)
        calls.append((start, aim, layer.weight.detach().to(torch.float32).clone()))
        return reports

    monkeypatch.setattr(SequentialPruner, "run", spy)
    task = SyntheticLayerTask(d_in=32, d_out=16, n_calibration=512, n_heldout=64, batch_size=128, dtype=dtype)
    IteratedOBS(PruneSpec(sparsity=0.5), IOBSConfig(rounds=2, update="task", lr=1e-6), progress=False).run(task)
    (_, none, pruned), (layer, target, _) = calls
    assert none is None and target.dtype == torch.float32
    kept = pruned != 0  # round 1's support: the step is small against these weights
    layer_moved = (layer != pruned)[kept].float().mean().item()
    target_moved = (target != pruned)[kept].float().mean().item()
    assert target_moved > 0.9
    if dtype == torch.bfloat16:
        assert layer_moved < 0.1  # the bfloat16 layer rounded the step away: projecting it would lose the step
    else:
        assert torch.equal(target, layer)
