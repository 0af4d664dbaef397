"""The scale path (``model="hf"`` + ``path``): tiny randomly initialised OPT and ViT checkpoints written to a
temporary folder stand in for OPT-125M / DeiT, with text files and an image folder given by path."""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from pruning.experiments import run_pruning  # noqa: E402
from pruning.models import minilm_dir  # noqa: E402


@pytest.fixture
def opt_dir(tmp_path):
    cfg = transformers.OPTConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, ffn_dim=64,
                                 num_attention_heads=2, max_position_embeddings=64, word_embed_proj_dim=32)
    torch.manual_seed(0)
    transformers.OPTForCausalLM(cfg).save_pretrained(tmp_path / "opt")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_dir() / name, tmp_path / "opt" / name)
    (tmp_path / "train.raw").write_text("The quick brown fox jumps over the lazy dog. " * 80)
    with open(tmp_path / "valid.jsonl", "w") as fh:
        for i in range(20):
            fh.write(json.dumps({"text": f"Document {i} talks about foxes and dogs and more foxes."}) + "\n")
    return tmp_path


@pytest.fixture
def vit_dir(tmp_path):
    from PIL import Image

    cfg = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, num_labels=3)
    torch.manual_seed(0)
    transformers.ViTForImageClassification(cfg).save_pretrained(tmp_path / "vit")
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("n01", "n02", "n03"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / c / f"{i}.png")
    return tmp_path


def _check(df, metric):
    model = df[(df["layer"] == "") & (df["metric"] == metric) & (df["split"] == "heldout")]
    assert set(model["method"]) == {"dense", "sparsegpt", "iobs"}
    assert np.isfinite(model["value"]).all()


def test_hf_causal_lm_from_path(opt_dir):
    opts = {"path": str(opt_dir / "opt"), "calibration_path": str(opt_dir / "train.raw"),
            "eval_path": str(opt_dir / "valid.jsonl"), "seqlen": 16, "batch_size": 4, "micro_batch": 4}
    df = run_pruning("hf", methods=["sparsegpt", "iobs"], sparsities=[0.5], iobs_rounds=[2],
                     task_options=opts, progress=False)
    _check(df, "ppl")


def test_hf_image_classifier_from_path(vit_dir):
    opts = {"path": str(vit_dir / "vit"), "calibration_path": str(vit_dir / "train"),
            "eval_path": str(vit_dir / "val"), "batch_size": 6, "micro_batch": 6}
    df = run_pruning("hf", methods=["sparsegpt", "iobs"], sparsities=[0.5], iobs_rounds=[2],
                     task_options=opts, progress=False)
    _check(df, "accuracy")
