"""Pure-Python experiment entry point: sweep method × sparsity × I-OBS rounds on one model and return tidy rows.

``run_pruning(model="vit", methods=[...], sparsities=[...], iobs_rounds=[1, 2, 3]) -> pd.DataFrame`` with one
row per (method, sparsity, iterations, split, metric[, layer]):

* ``split`` is ``"heldout"`` or ``"calibration"``; the calibration metric is measured on one fixed set for
  all rows of a sweep: the items of rounds ``1 … max(iobs_rounds)`` (round 1 only for ``batch="fixed"``),
  so one-shot methods saw the first batch of it and I-OBS(``T``) the first ``T`` batches;
* model-level rows have ``layer = ""``; ``metric = "layer_error"`` rows hold the held-out relative
  reconstruction error ``‖W⁰X − ŴX‖²/‖W⁰X‖²`` of one layer (``layer = "<block>.<name>"``);
* ``method = "dense"`` rows (sparsity 0, iterations 0) are the reference; ``"iobs"`` rows exist for every
  requested round count from a single run of ``max(iobs_rounds)`` rounds (evaluated after each round).

The Hydra app wraps this function (``experiment=prune_*``); it never writes files itself.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from pruning import metrics, obs
from pruning.engine import PruneSpec, named_linears
from pruning.iobs import IOBSConfig, IteratedOBS
from pruning.models import TaskConfig, load_task
from pruning.synthetic import SyntheticLayerTask
from pruning.tasks import PruningTask

log = logging.getLogger(__name__)

ONE_SHOT = ("magnitude", "wanda", "sparsegpt", "obs")
#: One-shot pruners given the calibration data of I-OBS(T) for the largest T evaluated, in one batch (the fair
#: comparison: I-OBS(T) sees T batches; without these its gain over one-shot mixes method and data).
EQUAL_DATA = ("wanda_equal", "sparsegpt_equal")
#: Every method `run_pruning` knows: the one-shot pruners, their equal-data versions and iterated I-OBS (the
#: Hydra app validates against it).
METHODS = (*ONE_SHOT, *EQUAL_DATA, "iobs")


def build_task(model: str, seed: int, device: str, options: dict[str, Any]) -> PruningTask:
    """``synthetic`` or any `TaskConfig` model, with extra ``options`` (TaskConfig fields)."""
    if model == "synthetic":
        return SyntheticLayerTask(seed=seed, **options)
    return load_task(TaskConfig(model=model, seed=seed, device=device, **options))


def calibration_indices(task: PruningTask, rounds: int, batch: str) -> np.ndarray:
    """Calibration items used by rounds ``1 … rounds`` (round 1 only for ``batch="fixed"``)."""
    used = [task.pool.indices(t) for t in range(1, (rounds if batch == "fresh" else 1) + 1)]
    return np.unique(np.concatenate(used))


def calibration_size(task: PruningTask) -> dict[str, int]:
    """Items and real tokens (text models: attention-mask ones, or every input id) in one round's batch: the
    data a one-shot pruner sees, stated so that a data-starved SparseGPT is visible (issue #19)."""
    batches = task.round_batches(1)
    tokens = 0
    for batch in batches:
        if "attention_mask" in batch:
            tokens += int(batch["attention_mask"].sum())
        elif "input_ids" in batch:
            tokens += int(batch["input_ids"].numel())
    return {"calibration_items_per_round": int(len(task.pool.indices(1))), "calibration_tokens_per_round": tokens}


def _rows(task: PruningTask, W0: dict[str, torch.Tensor], calib: np.ndarray,
          with_layers: bool) -> list[dict[str, Any]]:
    """Metric rows of the task's current model: held-out and ``calib`` items, plus held-out layer errors."""
    rows = []
    for split, idx in (("heldout", None), ("calibration", calib)):
        rows += [{"split": split, "metric": k, "value": v, "layer": ""}
                 for k, v in task.evaluate(split, idx).items()]
    if with_layers:
        errs = metrics.layer_errors(named_linears(task.blocks), W0, task.forward, task.stream("heldout"))
        rows += [{"split": "heldout", "metric": "layer_error", "value": v, "layer": k} for k, v in errs.items()]
    return rows


def _restore(task: PruningTask, W0: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for key, layer in named_linears(task.blocks).items():
            layer.weight.copy_(W0[key])


def _fits_obs(task: PruningTask) -> bool:
    return all(l.weight.shape[0] * l.weight.shape[1] ** 2 <= obs.OBC_MAX_ELEMENTS
               for l in named_linears(task.blocks).values())


def run_pruning(model: str = "vit", methods: Sequence[str] = ("magnitude", "wanda", "sparsegpt", "iobs"),
                sparsities: Sequence[float] = (0.5, 0.7), iobs_rounds: Sequence[int] = (1, 2, 3), seed: int = 0,
                device: str = "cpu", *, nm: tuple[int, int] | None = None, iobs: IOBSConfig | None = None,
                spec: PruneSpec | None = None, task_options: dict[str, Any] | None = None,
                layer_errors: bool = True, progress: bool = True) -> pd.DataFrame:
    """Prune ``model`` with every method at every sparsity and return the tidy result rows.

    Parameters
    ----------
    model : str
        ``vit``, ``smollm2``, ``minilm``, ``hf`` (with ``task_options={"path": ...}``) or ``synthetic``.
    methods : sequence of str
        From ``magnitude``, ``wanda``, ``sparsegpt``, ``obs`` (one-shot) and ``iobs`` (iterated).
    sparsities : sequence of float
        Unstructured sparsities (ignored when ``nm`` is given).
    iobs_rounds : sequence of int
        Round counts at which ``iobs`` is evaluated.
    nm : (n, m), optional
        N:M pattern instead of unstructured sparsity.
    iobs : IOBSConfig, optional
        I-OBS choices (``rounds`` is overridden by ``max(iobs_rounds)``).
    spec : PruneSpec, optional
        Pruner options (dampening, block size, Hessian dtype, ``max_blocks`` for smoke runs).
    task_options : dict, optional
        Extra `TaskConfig` (or `SyntheticLayerTask`) fields: batch size, sequence length, caps, paths.
    """
    task = build_task(model, seed, device, dict(task_options or {}))
    W0 = {k: l.weight.detach().clone() for k, l in named_linears(task.blocks).items()}
    iobs = (iobs or IOBSConfig()).validate()
    base = {"model": model, "seed": seed, "device": device, **{f"iobs_{k}": v for k, v in asdict(iobs).items()
                                                                 if k != "rounds"}, **calibration_size(task)}
    log.info("%s: calibration per round %d items, %d tokens (0: not a text model)", model,
             base["calibration_items_per_round"], base["calibration_tokens_per_round"])
    calib = calibration_indices(task, max(iobs_rounds), iobs.batch)
    records = [{**base, "method": "dense", "sparsity": 0.0, "pattern": "dense", "iterations": 0,
                "time_s": 0.0, **r} for r in _rows(task, W0, calib, layer_errors)]
    patterns = [(1.0 - nm[0] / nm[1], *nm)] if nm else [(s, 0, 0) for s in sparsities]
    for method in methods:
        if method == "obs" and not _fits_obs(task):
            log.warning("skipping exact OBS on %s: layers too large", model)
            continue
        for s, n, m in patterns:
            records += _run_one(task, W0, calib, method, replace(spec or PruneSpec(), sparsity=s, n=n, m=m),
                                iobs, sorted(set(iobs_rounds)), layer_errors, progress, base)
            _restore(task, W0)
    return pd.DataFrame.from_records(records)


def _run_one(task: PruningTask, W0: dict[str, torch.Tensor], calib: np.ndarray, method: str, spec: PruneSpec,
             iobs: IOBSConfig, rounds: list[int], layer_errors: bool, progress: bool,
             base: dict[str, Any]) -> list[dict]:
    """Rows of one (method, pattern) run; ``iobs`` is evaluated after each round listed in ``rounds``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {METHODS}")
    if method == "iobs":
        cfg = replace(iobs, rounds=max(rounds))
    else:  # an equal-data baseline calibrates once on the batches I-OBS(max rounds) uses over its rounds
        equal = method in EQUAL_DATA and iobs.batch == "fresh"
        cfg = IOBSConfig(rounds=1, first_batches=max(rounds) if equal else 1)
    pruner = method.removesuffix("_equal")
    spec = replace(spec, method=cfg.projection if method == "iobs" else pruner)
    label = f"{spec.n}:{spec.m}" if spec.m else f"{spec.sparsity:g}"
    out: list[dict] = []
    tick = time.perf_counter()

    def on_round(t: int, reports: list) -> None:
        if method != "iobs" or t in rounds:
            head = {**base, "method": method, "sparsity": spec.sparsity, "pattern": label, "iterations": t,
                    "time_s": time.perf_counter() - tick}
            new = [{**head, **r} for r in _rows(task, W0, calib, layer_errors)]
            out.extend(new)
            log.info("%s %s after %d round(s): %s", method, label, t,
                     {f"{r['split']}/{r['metric']}": round(r["value"], 4) for r in new if r["layer"] == ""})

    IteratedOBS(spec, cfg, progress=progress).run(task, on_round)
    return out
