"""The digits ViT (the offline DeiT stand-in): dense accuracy and one-shot pruning quality."""

import pytest

torch = pytest.importorskip("torch")

from pruning.engine import PruneSpec  # noqa: E402
from pruning.iobs import IteratedOBS  # noqa: E402
from pruning.models import TaskConfig, load_task  # noqa: E402
from pruning.vit import ViTConfig, load_or_train  # noqa: E402


@pytest.fixture(scope="module")
def vit_state():
    """Trains the default ViT once (a few seconds on 2 CPU cores) or reads it from $OBSBENCH_CACHE."""
    return load_or_train(ViTConfig()).state_dict()


def _task(state):
    task = load_task(TaskConfig(model="vit"))
    task.model.load_state_dict(state)
    return task


def test_dense_vit_accuracy(vit_state):
    assert _task(vit_state).evaluate("heldout")["accuracy"] >= 0.90


def test_sparsegpt_beats_magnitude_at_half_sparsity(vit_state):
    nll = {}
    for method in ("magnitude", "sparsegpt"):
        task = _task(vit_state)
        IteratedOBS(PruneSpec(method=method, sparsity=0.5), progress=False).run(task)
        nll[method] = task.evaluate("heldout")["nll"]
    dense = _task(vit_state).evaluate("heldout")["nll"]
    assert dense < nll["sparsegpt"] < nll["magnitude"]


def test_training_is_cached(tmp_path):
    cfg = ViTConfig(depth=1, dim=16, mlp=16, epochs=1)
    first = load_or_train(cfg, cache=tmp_path)
    assert len(list(tmp_path.glob("vit-digits-*.pt"))) == 1
    second = load_or_train(cfg, cache=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
