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


def _images(root, folders, per_class=2, size=40, seed=1):
    """Random RGB images, ``per_class`` in each class folder of ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in folders:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


@pytest.fixture
def vit_dir(tmp_path):
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, num_labels=3)
    torch.manual_seed(0)
    transformers.ViTForImageClassification(cfg).save_pretrained(tmp_path / "vit")
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    for seed, split in enumerate(("train", "val")):
        _images(tmp_path / split, ["n01", "n02", "n03"], per_class=4, seed=seed)
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
            "eval_path": str(vit_dir / "val"), "batch_size": 6, "micro_batch": 6, "class_map": "sorted"}
    df = run_pruning("hf", methods=["sparsegpt", "iobs"], sparsities=[0.5], iobs_rounds=[2],
                     task_options=opts, progress=False)
    _check(df, "accuracy")


def test_image_labels_come_from_the_class_map_not_from_the_folders_present(vit_dir, tmp_path):
    """An evaluation folder with 2 of the model's 3 classes: ranked among themselves they would be classes 0 and 1;
    the mapping file (JSON, or ImageNet's LOC_synset_mapping.txt layout) says 1 and 2. Without one the loader
    refuses rather than guesses; ``sorted`` is refused when folders are missing."""
    from pruning import data
    from pruning.models import TaskConfig, load_task

    _images(tmp_path / "subset", ["n02", "n03"])
    (tmp_path / "map.json").write_text(json.dumps({"n01": 0, "n02": 1, "n03": 2}))
    (tmp_path / "LOC_synset_mapping.txt").write_text("n01 tench, Tinca tinca\nn02 goldfish\nn03 shark\n")
    for class_map in (tmp_path / "map.json", tmp_path / "LOC_synset_mapping.txt"):
        files, labels = data.image_folder(tmp_path / "subset", class_map=str(class_map), num_labels=3)
        assert [f.parent.name for f in files] == ["n02", "n02", "n03", "n03"] and labels == [1, 1, 2, 2]
    base = dict(model="hf", path=str(vit_dir / "vit"), calibration_path=str(vit_dir / "train"),
                eval_path=str(tmp_path / "subset"))
    task = load_task(TaskConfig(**base, class_map=str(tmp_path / "map.json")))
    assert task.splits["heldout"]["labels"].tolist() == [1, 1, 2, 2]
    with pytest.raises(ValueError, match="cannot tell the class index of the image folders"):
        load_task(TaskConfig(**base))
    with pytest.raises(ValueError, match="class_map=sorted needs one folder per class of the model: found 2"):
        load_task(TaskConfig(**base, class_map="sorted"))
    (tmp_path / "short.json").write_text(json.dumps({"n02": 1}))
    with pytest.raises(ValueError, match="has no entry for the folder.s. n03"):
        data.image_folder(tmp_path / "subset", class_map=str(tmp_path / "short.json"))
    (tmp_path / "far.json").write_text(json.dumps({"n02": 1, "n03": 7}))
    with pytest.raises(ValueError, match="outside the model's 3 classes"):
        data.image_folder(tmp_path / "subset", class_map=str(tmp_path / "far.json"), num_labels=3)
    files, labels = data.image_folder(tmp_path / "subset", label2id={"n02": 0, "n03": 1})  # labels named by folder
    assert labels == [0, 0, 1, 1]


def test_evaluation_images_are_decoded_one_batch_at_a_time(vit_dir, monkeypatch):
    """The held-out split holds file names; evaluation decodes micro-batch by micro-batch (at most ``micro_batch``
    images exist at once) and scores the same as the images decoded all together."""
    from pruning import data
    from pruning.models import TaskConfig, load_task

    opened = []
    original = data.ImageFiles.__getitem__

    def spy(self, index):
        out = original(self, index)
        if not isinstance(index, slice):
            opened.append(out.shape[0])
        return out

    monkeypatch.setattr(data.ImageFiles, "__getitem__", spy)
    task = load_task(TaskConfig(model="hf", path=str(vit_dir / "vit"), calibration_path=str(vit_dir / "train"),
                                eval_path=str(vit_dir / "val"), micro_batch=5, class_map="sorted"))
    assert isinstance(task.splits["heldout"]["pixel_values"], data.ImageFiles) and not opened
    streamed = task.evaluate("heldout")
    assert opened == [5, 5, 2]  # 12 images
    files = task.splits["heldout"]["pixel_values"]
    logits = task.forward({"pixel_values": files[np.arange(len(files))]})
    whole = {"accuracy": float((logits.argmax(-1) == task.splits["heldout"]["labels"]).float().mean())}
    assert streamed["accuracy"] == pytest.approx(whole["accuracy"])


def test_distilled_deit_loads_with_its_teacher_head(tmp_path):
    """``DeiTForImageClassificationWithTeacher`` (the distilled DeiT checkpoints) is a vision model, loaded with
    its own class: its logits are the mean of the class-token and distillation heads, as in the saved model (the
    Auto class would build a plain ``classifier`` head the checkpoint does not have)."""
    from pruning.models import TaskConfig, load_task, model_kind

    cfg = transformers.DeiTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, num_labels=3)
    cfg.architectures = ["DeiTForImageClassificationWithTeacher"]
    torch.manual_seed(0)
    saved = transformers.DeiTForImageClassificationWithTeacher(cfg).eval()
    saved.save_pretrained(tmp_path / "deit")
    transformers.DeiTImageProcessor(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32},
                                    do_center_crop=False).save_pretrained(tmp_path / "deit")
    for split in ("train", "val"):
        _images(tmp_path / split, ["0", "1", "2"])  # integer folder names are the class indices
    assert model_kind("DeiTForImageClassificationWithTeacher") == "vision"
    task = load_task(TaskConfig(model="hf", path=str(tmp_path / "deit"), calibration_path=str(tmp_path / "train"),
                                eval_path=str(tmp_path / "val")))
    assert type(task.model) is transformers.DeiTForImageClassificationWithTeacher
    batch = task.batches("heldout")[0]
    with torch.no_grad():
        assert torch.allclose(task.forward(batch), saved(pixel_values=batch["pixel_values"]).logits)
    assert len(task.blocks) == 2
    df = run_pruning("hf", methods=["sparsegpt"], sparsities=[0.5], iobs_rounds=[1], progress=False,
                     task_options={"path": str(tmp_path / "deit"), "calibration_path": str(tmp_path / "train"),
                                   "eval_path": str(tmp_path / "val"), "batch_size": 6, "micro_batch": 6})
    assert np.isfinite(df[(df["metric"] == "accuracy") & (df["layer"] == "")]["value"]).all()
