"""The documented choices of iterated I-OBS (pruning/iobs.py) do what the README says."""

import pytest

torch = pytest.importorskip("torch")

from pruning.data import CalibrationPool  # noqa: E402
from pruning.engine import PruneSpec, named_linears  # noqa: E402
from pruning.iobs import IOBSConfig, IteratedOBS  # noqa: E402
from pruning.synthetic import SyntheticLayerTask  # noqa: E402
from pruning.tasks import VisionTask  # noqa: E402
from pruning.vit import DigitsViT, ViTConfig  # noqa: E402


def _run(task, **cfg):
    seen = {}
    IteratedOBS(PruneSpec(sparsity=0.5, hessian_dtype=torch.float64), IOBSConfig(**cfg), progress=False).run(
        task, lambda t, reports: seen.__setitem__(t, reports))
    return seen


@pytest.mark.parametrize("hessian, factor", [("accumulate", 3), ("fresh", 1)])
def test_hessian_accumulates_over_rounds(hessian, factor):
    seen = _run(SyntheticLayerTask(d_in=16, d_out=8, n_calibration=512, batch_size=64), rounds=3, hessian=hessian)
    assert seen[3][0].nsamples == factor * seen[1][0].nsamples


def test_layer_update_with_unit_lr_and_fixed_batch_repeats_one_shot():
    """lr = 1 re-prunes W⁰ (Newton step of the layer loss); with the same batch every round nothing changes."""
    errors = []
    for rounds in (1, 3):
        task = SyntheticLayerTask(d_in=16, d_out=8, n_calibration=512, batch_size=64)
        _run(task, rounds=rounds, lr=1.0, batch="fixed", hessian="fresh")
        errors.append(task.evaluate("heldout")["rel_error"])
    assert errors[0] == pytest.approx(errors[1], rel=1e-9)


def _vit_task():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    split = {"pixel_values": x, "labels": torch.randint(0, 10, (64,))}
    return VisionTask("vit", DigitsViT(ViTConfig(depth=2)), {"calibration": split, "heldout": split},
                      CalibrationPool(64, 16, 0), micro_batch=16)


def test_dense_inputs_differ_from_pruned_inputs():
    weights = {}
    for inputs in ("pruned", "dense"):
        task = _vit_task()
        _run(task, rounds=2, inputs=inputs, update="task", lr=0.01)
        weights[inputs] = {k: l.weight.detach().clone() for k, l in named_linears(task.blocks).items()}
        assert all(float((w == 0).float().mean()) == pytest.approx(0.5) for w in weights[inputs].values())
    assert not torch.equal(weights["pruned"]["1.attn.qkv"], weights["dense"]["1.attn.qkv"])


def test_task_update_leaves_unpruned_blocks_alone():
    task = _vit_task()
    before = {k: l.weight.detach().clone() for k, l in named_linears(task.blocks).items()}
    spec = PruneSpec(sparsity=0.5, max_blocks=1)
    IteratedOBS(spec, IOBSConfig(rounds=2, update="task", lr=0.1), progress=False).run(task)
    for key, layer in named_linears(task.blocks).items():
        assert torch.equal(layer.weight, before[key]) == key.startswith("1.")
