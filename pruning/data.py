"""Offline calibration and evaluation data: nothing here downloads anything.

* ``digits``: scikit-learn's bundled 8×8 digits (1797 images), split into train (calibration pool) and test.
* ``pydoc``: the standard library's ``pydoc_data.topics`` help texts, split *by topic* into a calibration and a
  held-out set, so no paragraph of a held-out topic is ever seen during calibration.
* Scale path: plain-text or JSON-lines files given by path (WikiText2 ``wiki.*.raw``, C4 ``*.json(l)``) and
  ImageNet-style class folders given by path.

Calibration batches are drawn by `CalibrationPool`: round ``t`` takes the ``t``-th disjoint slice of a seeded
permutation of the pool, wrapping around when the pool is exhausted (iterated I-OBS's ``batch="fresh"``;
``batch="fixed"`` asks for round 1 every time).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, TypeVar

import numpy as np
import torch

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class CalibrationPool:
    """A finite pool of calibration items and a seeded rule for the batch of each round.

    Parameters
    ----------
    n_items : int
        Pool size.
    batch_size : int
        Items per round.
    seed : int
        Seed of the permutation.
    """

    n_items: int
    batch_size: int
    seed: int = 0

    def indices(self, round_: int) -> np.ndarray:
        """Pool indices of the batch for round ``round_`` (1-based): slice ``round_ − 1`` of the permutation."""
        if round_ < 1:
            raise ValueError(f"rounds are numbered from 1, got {round_}")
        perm = np.random.default_rng(self.seed).permutation(self.n_items)
        start = (round_ - 1) * self.batch_size
        return perm[np.arange(start, start + self.batch_size) % self.n_items]

    def take(self, items: Sequence[T], round_: int) -> list[T]:
        """The items of round ``round_``."""
        return [items[i] for i in self.indices(round_)]


def digits(test_size: float = 0.33, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """scikit-learn's 8×8 digits scaled to [0, 1]: ``(x_train, y_train, x_test, y_test)``, images ``(N, 1, 8, 8)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.long)
    idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed,
                                      stratify=data.target)
    return x[idx_tr], y[idx_tr], x[idx_te], y[idx_te]


def pydoc_topics(heldout_fraction: float = 0.3, seed: int = 0) -> tuple[list[str], list[str]]:
    """Help texts of ``pydoc_data.topics`` split by topic: ``(calibration_texts, heldout_texts)``.

    Topics are sorted by name, permuted with ``seed`` and the last ``heldout_fraction`` of them held out.
    """
    from pydoc_data.topics import topics

    names = sorted(topics)
    perm = np.random.default_rng(seed).permutation(len(names))
    n_held = int(round(heldout_fraction * len(names)))
    held = {names[i] for i in perm[len(names) - n_held:]}
    calib = [topics[k] for k in names if k not in held]
    return calib, [topics[k] for k in names if k in held]


def read_texts(path: str | Path) -> list[str]:
    """Documents from a text file (one document), a JSON-lines file with a ``"text"`` field per line (C4), or
    a folder of such files."""
    path = Path(path)
    if path.is_dir():
        return [t for f in sorted(path.iterdir()) if f.is_file() for t in read_texts(f)]
    if path.suffix in (".json", ".jsonl"):
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line)["text"] for line in fh if line.strip()]
    return [path.read_text(encoding="utf-8")]


def paragraphs(texts: Sequence[str], min_chars: int = 80, max_chars: int = 600) -> list[str]:
    """Blank-line separated paragraphs of ``texts`` with whitespace collapsed, truncated to ``max_chars`` and
    at least ``min_chars`` long (the sentences fed to the encoder)."""
    out = []
    for text in texts:
        for para in text.split("\n\n"):
            para = " ".join(para.split())
            if len(para) >= min_chars:
                out.append(para[:max_chars])
    return out


def token_windows(ids: torch.Tensor, seqlen: int) -> torch.Tensor:
    """Non-overlapping windows ``(n, seqlen)`` of a 1-D token stream (the remainder is dropped)."""
    n = ids.numel() // seqlen
    if n == 0:
        raise ValueError(f"text has {ids.numel()} tokens, fewer than one window of {seqlen}")
    return ids[: n * seqlen].view(n, seqlen)


def image_folder(path: str | Path, limit: int | None = None, seed: int = 0, class_map: str | None = None,
                 label2id: dict[str, int] | None = None,
                 num_labels: int | None = None) -> tuple[list[Path], list[int]]:
    """Files and class indices of an ImageNet-style folder (one sub-folder per class), a seeded random subset of
    ``limit`` of them when given. The index of a class folder comes from `class_indices`, never from its rank
    among the folders present: an evaluation folder holding 10 of ImageNet's 1000 classes would otherwise be
    scored against classes 0–9."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    index = class_indices(folders, class_map, label2id, num_labels)
    files = [(f, index[name]) for name in folders for f in sorted((root / name).iterdir()) if f.is_file()]
    if not files:
        raise ValueError(f"no images under {root}")
    if limit is not None and limit < len(files):
        keep = np.sort(np.random.default_rng(seed).choice(len(files), limit, replace=False))
        files = [files[i] for i in keep]
    return [f for f, _ in files], [c for _, c in files]


def class_indices(folders: Sequence[str], class_map: str | None = None, label2id: dict[str, int] | None = None,
                  num_labels: int | None = None) -> dict[str, int]:
    """The model's class index of every class folder.

    ``class_map``: a mapping file (`read_class_map`), or ``"sorted"`` — the folders are all of the model's
    classes in index order (ImageNet's sorted WordNet ids; refused unless there is one folder per class). None:
    the folder names are the model's labels (``label2id`` of its config) or the class indices themselves.
    """
    folders = list(folders)
    if class_map == "sorted":
        if num_labels is not None and len(folders) != num_labels:
            raise ValueError(f"class_map=sorted needs one folder per class of the model: found {len(folders)} "
                             f"folders for {num_labels} classes; give a mapping file instead")
        return {name: i for i, name in enumerate(folders)}
    if class_map is not None:
        mapping = read_class_map(class_map)
        missing = [name for name in folders if name not in mapping]
        if missing:
            raise ValueError(f"class map {class_map} has no entry for the folder(s) {', '.join(missing[:3])}"
                             + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
        index = {name: mapping[name] for name in folders}
    elif label2id and all(name in label2id for name in folders):
        index = {name: int(label2id[name]) for name in folders}
    elif folders and all(name.isdigit() for name in folders):
        index = {name: int(name) for name in folders}
    else:
        raise ValueError(f"cannot tell the class index of the image folders ({', '.join(folders[:3])}, ...): give "
                         "class_map=<file> (JSON {folder: index}, or one folder name per line in class order, "
                         "e.g. ImageNet's LOC_synset_mapping.txt), or class_map=sorted when the folders are all "
                         "of the model's classes in index order")
    if num_labels is not None:
        beyond = {name: i for name, i in index.items() if not 0 <= i < num_labels}
        if beyond:
            raise ValueError(f"class indices {sorted(beyond.values())[:3]} of folders {', '.join(list(beyond)[:3])} "
                             f"are outside the model's {num_labels} classes")
    return index


def read_class_map(path: str | Path) -> dict[str, int]:
    """A class map file: a JSON object ``{folder: index}``; or text, one class per line in index order whose
    first word is the folder name (``n01440764 tench, Tinca tinca``, ImageNet's ``LOC_synset_mapping.txt``);
    or text lines ``folder index``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read class map {path}: {exc.strerror or exc}") from None
    if path.suffix == ".json":
        try:
            mapping = json.loads(text)
            return {str(name): int(index) for name, index in mapping.items()}
        except (ValueError, TypeError, AttributeError):
            raise ValueError(f"class map {path} is not a JSON object of folder -> integer index") from None
    rows = [line.split() for line in text.splitlines() if line.strip()]
    if rows and all(len(row) == 2 and row[1].lstrip("-").isdigit() for row in rows):
        return {name: int(index) for name, index in rows}
    return {row[0]: i for i, row in enumerate(rows)}


class ImageFiles:
    """Images decoded on demand: ``files[indices]`` opens, converts and preprocesses just those files (a batch),
    so a held-out folder of 50,000 ImageNet images is never decoded at once (≈ 30 GB as float32 tensors).
    Stands in for a tensor in a task's split: ``shape[0]`` items, indexed by a tensor or array of positions
    (a batch) or by a slice (a smaller `ImageFiles`)."""

    def __init__(self, files: Sequence[Path], processor: Any, dtype: torch.dtype = torch.float32):
        self.files, self.processor, self.dtype = list(files), processor, dtype

    @property
    def shape(self) -> tuple[int]:
        return (len(self.files),)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: Any) -> Any:
        from PIL import Image

        if isinstance(index, slice):
            return ImageFiles(self.files[index], self.processor, self.dtype)
        images = []
        for i in np.asarray(index).reshape(-1):
            with Image.open(self.files[int(i)]) as image:
                images.append(image.convert("RGB"))
        return self.processor(images, return_tensors="pt")["pixel_values"].to(self.dtype)
