"""The GPU check list of issues #18 and #19 as one prepared script, for a session that is lent a GPU machine
(none of it has been measured on this project's CPU-only machines). Writes a markdown report, rewritten after
every check, so that a run stopped by its time limit still returns what it measured.

    python -m benchmarks.gpu_check --device cuda --out "$OUT"          # at most ~8 min (--budget-s 480)
    python -m benchmarks.gpu_check --device cpu --quick --out /tmp/g   # every check on tiny sizes (a smoke run)

Checks, in order (each skipped when less than its estimate is left of ``--budget-s``):

1. ``solvers``: every batched solver, torch float64 on the device against the numpy path (the reference: its
   products are the one-trial BLAS calls) — same statuses and iteration counts, the largest relative difference
   of the final iterates (README "Batched trials": to rounding, 1e-10 on the CPU).
2. ``iteration``: batched IHT's time per trial-iteration on the device over the time of its two batched matrix
   products there (issue #18's ratio, ≤ 1.5), at 20, 100 and 1000 trials.
3. ``grids``: the full-size n = 200 diagrams of IHT and CoSaMP (15 x 15 cells, 20 trials) through the command line
   with ``experiment.backend=torch experiment.device=<device> experiment.n_jobs=1``: wall time of the command
   (target ≤ 30 s; on 2 CPU cores numpy takes 31-41 s and 45-51 s).
4. ``kernels``: SparseGPT on one SmolLM2 layer with its calibration Hessian, float32 on the device against float64
   on the CPU: the fraction of mask entries that differ and the layer errors (`pruning/README.md`, item 4).
5. ``bf16``: one ``task`` update step on SmolLM2's first block loaded in bfloat16 on the device: the fraction of
   weights that change and the relative change, in the layers and in the float32 masters that I-OBS projects,
   against the same step in float32 (item 1: in bfloat16 layers one small step rounds away — 2.5% of the
   weights change on the CPU — so the masters must carry it).
6. ``memory``: peak device memory of I-OBS(3) at 70% on SmolLM2 with the accumulated and with fresh Hessians
   (item 2; CUDA only).
7. ``prune_lm``: the default ``obsbench experiment=prune_lm`` for seed 0 on the device, timed (45-50 min per seed
   on 2 CPU cores), its summary table copied into the report (item 5).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.batched import CELL, GRID, ITERATIONS, SMOKE_GRID, TARGET_GRID_S, TARGET_RATIO, iteration_ratio
from benchmarks.cli import run_obsbench
from problems.batched import ProblemBatch
from problems.sensing import make_compressed_sensing
from solvers.batched import BATCHED

log = logging.getLogger(__name__)

#: one-trial parameters of the solver check (Topk-I-OBS needs damping: AᵀA is singular when m < d)
SOLVER_PARAMS: dict[str, dict[str, Any]] = {"TopkIOBS": dict(damping=1e-3), "NSIHT": dict(epsilon=1e-3)}
#: (m, d, budgets) of the solver check: easy cells and cells past the phase transition
COLUMNS = {True: [(25, 50, (2, 6)), (48, 64, (3, 14))], False: [(100, 200, (10, 30, 45)), (250, 500, (25, 80))]}
LM_OPTIONS = {True: dict(batch_size=4, micro_batch=4, eval_items=2, seqlen=32),
              False: dict(batch_size=64, micro_batch=8, eval_items=16, seqlen=128)}


@dataclass
class Report:
    """The report's sections, written to ``path`` after every check."""

    path: Path
    device: str
    sections: list[str] = field(default_factory=list)

    def add(self, title: str, lines: list[str]) -> None:
        self.sections.append("\n".join([f"## {title}", "", *lines, ""]))
        self.write()

    def write(self) -> None:
        head = [f"# GPU check list (issues #18, #19) on `{self.device}`", "", device_description(self.device), "",
                "Command: `python -m benchmarks.gpu_check` (see its docstring for what each check compares).", ""]
        self.path.write_text("\n".join(head + self.sections) + "\n")


def device_description(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"Device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}."
    return f"Device: {device} (torch {torch.__version__}); not a GPU: a smoke run of the script, not a measurement."


# -- #18: batched solvers --------------------------------------------------------------------------------------

def check_solvers(device: str, quick: bool) -> list[str]:
    """Torch on ``device`` against numpy for every batched solver, on the cells of `COLUMNS`."""
    lines = ["| solver | trials | same status and iterations | largest relative difference of x |", "|---|---|---|---|"]
    for cls, twin in BATCHED.items():
        trials, same, worst = 0, 0, 0.0
        for m, d, budgets in COLUMNS[quick]:
            solvers = [cls(k=k, **SOLVER_PARAMS.get(cls.__name__, {})) for k in budgets for _ in range(3)]
            problems = [make_compressed_sensing(m=m, d=d, k_star=s.k, seed=1000 * s.k + i % 3)
                        for i, s in enumerate(solvers)]
            batch = ProblemBatch.from_problems(problems)
            reference = twin(solvers[0]).run(batch, solvers=solvers)
            results = twin(solvers[0], backend="torch", device=device).run(batch, solvers=solvers)
            for one, other in zip(reference, results):
                trials += 1
                same += (one.status, one.n_iter) == (other.status, other.n_iter)
                with np.errstate(over="ignore", invalid="ignore"):
                    scale = np.linalg.norm(np.nan_to_num(one.x)) or 1.0
                    worst = max(worst, float(np.linalg.norm(np.nan_to_num(other.x - one.x)) / scale))
        lines.append(f"| {cls.__name__} | {trials} | {same}/{trials} | {worst:.1e} |")
    return lines


def check_iteration(device: str, quick: bool) -> list[str]:
    """Batched IHT (torch on ``device``): µs per trial-iteration over µs per trial of its two products there
    (`benchmarks.batched.iteration_ratio`, median of 3 runs)."""
    cell, iterations = (dict(m=8, d=16, k_star=4), 5) if quick else (CELL, ITERATIONS)
    lines = [f"One cell, m = {cell['m']}, d = {cell['d']}, k = {cell['k_star']}, {iterations} iterations; medians "
             "of 3 runs.", "",
             "| trials | µs per trial-iteration | µs per trial, A x and Aᵀr | ratio | target |", "|---|---|---|---|---|"]
    for trials in ((2, 4) if quick else (20, 100, 1000)):
        run, product, ratio = iteration_ratio(trials, "torch", 3, cell, iterations, device=device)
        verdict = "met" if ratio <= TARGET_RATIO else "missed"
        lines.append(f"| {trials} | {run:.2f} | {product:.2f} | {ratio:.2f} | <= {TARGET_RATIO:g}: {verdict} |")
    return lines


def check_grids(device: str, quick: bool, scratch: Path, seconds: float) -> list[str]:
    """The n = 200 diagrams of IHT and CoSaMP through the command line, batched on ``device``, each given at most
    half of ``seconds``."""
    grid = SMOKE_GRID if quick else GRID
    lines = [f"`obsbench {' '.join(grid)} solver=<s> experiment.backend=torch experiment.device={device} "
             "experiment.n_jobs=1`, wall time of the whole command.", "",
             "| solver | wall | target |", "|---|---|---|"]
    for solver in ("iht", "cosamp"):
        outcome = run_obsbench([*grid, f"solver={solver}", "experiment.backend=torch", f"experiment.device={device}",
                                "experiment.n_jobs=1"], scratch / f"grid_{solver}", timeout=max(30.0, seconds / 2))
        wall = f"{outcome.seconds:.1f} s" if outcome.ok else f"failed ({outcome.tail.strip().splitlines()[-1:]})"
        verdict = ("met" if outcome.seconds <= TARGET_GRID_S else "missed") if outcome.ok else "n/a"
        lines.append(f"| {solver} | {wall} | <= {TARGET_GRID_S:g} s: {verdict} |")
    return lines


# -- #19: pruning on the device --------------------------------------------------------------------------------

def lm_task(device: str, quick: bool, dtype: str = "auto") -> Any:
    from pruning.experiments import build_task

    return build_task("smollm2", 0, device, {**LM_OPTIONS[quick], "dtype": dtype})


def first_layer_hessian(task: Any) -> tuple[Any, Any]:
    """(W, H) of the first linear layer of block 0: its weights and 2XᵀX/n of its calibration inputs (float64)."""
    import torch

    from pruning.engine import named_linears

    layer = next(iter(named_linears(task.blocks[:1]).values()))
    rows: list[torch.Tensor] = []
    hook = layer.register_forward_pre_hook(lambda _, args: rows.append(args[0].reshape(-1, args[0].shape[-1])))
    try:
        with torch.no_grad():
            for batch in task.round_batches(1):
                task.forward(batch)
    finally:
        hook.remove()
    X = torch.cat(rows).to(torch.float64).cpu()
    return layer.weight.detach().to(torch.float64).cpu(), 2.0 * X.T @ X / X.shape[0]


def check_kernels(device: str, quick: bool) -> list[str]:
    """SparseGPT masks and layer errors: float32 on ``device`` against float64 on the CPU."""
    import torch

    from pruning.masks import Pattern
    from pruning.obs import quadratic_error, sparsegpt

    W, H = first_layer_hessian(lm_task("cpu", quick, dtype="float32"))
    lines = [f"First linear layer of SmolLM2's block 0 ({W.shape[0]} x {W.shape[1]}), its calibration Hessian.", "",
             "| sparsity | mask entries that differ | layer error float64 (CPU) | float32 (device) | ratio |",
             "|---|---|---|---|---|"]
    for sparsity in (0.5, 0.7):
        pattern = Pattern.make(sparsity)
        W64, mask64 = sparsegpt(W, H, pattern)
        W32, mask32 = sparsegpt(W.to(torch.float32).to(device), H.to(torch.float32).to(device), pattern)
        error64 = quadratic_error(W, W64, H)
        error32 = quadratic_error(W, W32.cpu().to(torch.float64), H)
        differ = float((mask32.cpu() != mask64).double().mean())
        lines.append(f"| {sparsity:g} | {differ:.2e} | {error64:.6g} | {error32:.6g} | {error32 / error64:.5f} |")
    return lines


def check_bf16(device: str, quick: bool) -> list[str]:
    """One ``task`` update step (lr 0.01) on block 0 in bfloat16 and in float32: what changes in the layers and in
    the float32 masters that the projection starts from."""
    import torch

    from pruning.engine import named_linears
    from pruning.iobs import task_step

    lines = ["One `task_step` (lr = 0.01, the calibration batch of round 2) on the linear layers of SmolLM2's "
             "block 0: the fraction of weights that changed and ‖ΔW‖ / ‖W‖, in the layers and in the float32 "
             "masters `task_step` returns (I-OBS projects the masters: a step the bfloat16 layers round away must "
             "still show there).", "",
             "| weights | layers: changed | layers: ‖ΔW‖ / ‖W‖ | masters: changed | masters: ‖ΔW‖ / ‖W‖ |",
             "|---|---|---|---|---|"]
    for dtype in ("bfloat16", "float32"):
        task = lm_task(device, quick, dtype=dtype)
        layers = list(named_linears(task.blocks[:1]).values())
        before = [layer.weight.detach().to(torch.float32).clone() for layer in layers]
        masters = task_step(task, layers, task.round_batches(2), lr=0.01)
        cells = []
        for after in ([layer.weight.detach().to(torch.float32) for layer in layers], masters):
            changed = sum(int((a != b).sum()) for a, b in zip(after, before)) / sum(b.numel() for b in before)
            relative = float(sum(((a - b) ** 2).sum() for a, b in zip(after, before)).sqrt()
                             / sum((b ** 2).sum() for b in before).sqrt())
            cells += [f"{changed:.3f}", f"{relative:.3e}"]
        lines.append(f"| {dtype} | {' | '.join(cells)} |")
    return lines


def check_memory(device: str, quick: bool) -> list[str]:
    """Peak device memory of I-OBS(3) at 70% with accumulated and with fresh Hessians."""
    import torch

    from pruning.engine import PruneSpec
    from pruning.experiments import run_pruning
    from pruning.iobs import IOBSConfig

    if not device.startswith("cuda"):
        return ["Not measured: peak memory is read from `torch.cuda.max_memory_allocated` (CUDA only)."]
    lines = ["I-OBS(3) at 70% on SmolLM2 (bfloat16 weights, float32 Hessians), `run_pruning` without layer errors.",
             "", "| Hessian | peak allocated | wall |", "|---|---|---|"]
    spec = PruneSpec(max_blocks=2) if quick else PruneSpec()
    for hessian in ("accumulate", "fresh"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        tic = time.perf_counter()
        run_pruning("smollm2", ["iobs"], [0.7], [3], 0, device, iobs=IOBSConfig(hessian=hessian), spec=spec,
                    task_options=LM_OPTIONS[quick], layer_errors=False, progress=False)
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30
        lines.append(f"| {hessian} | {peak:.2f} GiB | {time.perf_counter() - tic:.0f} s |")
    return lines


def check_prune_lm(device: str, quick: bool, scratch: Path, seconds: float) -> list[str]:
    """The default prune_lm job for seed 0 on ``device`` (stopped after ``seconds``), timed, with its summary
    table."""
    extra = ["experiment.max_blocks=1", "experiment.task.batch_size=4", "experiment.task.eval_items=2",
             "experiment.rounds=[1,2]", "experiment.methods=[sparsegpt,sparsegpt_equal,iobs]"] if quick else []
    args = ["experiment=prune_lm", f"experiment.device={device}", "seed=0", *extra]
    outcome = run_obsbench(args, scratch / "prune_lm", timeout=max(60.0, seconds))
    lines = [f"`obsbench {' '.join(args)}`: {'%.0f s' % outcome.seconds if outcome.ok else 'failed'}.", ""]
    summaries = sorted((scratch / "prune_lm" / "outputs").rglob("summary.csv"))
    if not outcome.ok or not summaries:
        return lines + ["```", outcome.tail.strip(), "```"]
    import pandas as pd

    summary = pd.read_csv(summaries[-1])
    held = summary[(summary["split"] == "heldout") & summary["metric"].isin(["ppl", "nll"])]
    table = held.pivot_table(index=["sparsity", "label"], columns="metric", values="mean", sort=True)
    rows = [f"| {sparsity:g} | {label} | {values['ppl']:.4g} | {values['nll']:.4f} |"
            for (sparsity, label), values in table.iterrows()]
    return lines + ["| sparsity | method | held-out perplexity | NLL |", "|---|---|---|---|", *rows]


#: name -> (estimated seconds on a GPU, the check)
CHECKS: dict[str, tuple[float, Callable[..., list[str]]]] = {
    "solvers": (30, check_solvers), "iteration": (30, check_iteration), "grids": (90, check_grids),
    "kernels": (20, check_kernels), "bf16": (30, check_bf16), "memory": (90, check_memory),
    "prune_lm": (240, check_prune_lm)}
NEEDS_SCRATCH = {"grids", "prune_lm"}


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (cuda, cuda:1, cpu)")
    parser.add_argument("--checks", default=",".join(CHECKS), help="comma-separated, from " + ", ".join(CHECKS))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every check")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="skip checks that would not fit in this; the command-line checks stop at its end")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder of gpu_check.md")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.checks.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in CHECKS]
    if unknown:
        parser.error(f"unknown check {unknown[0]!r}; choose from {', '.join(CHECKS)}")
    import torch

    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    args.out.mkdir(parents=True, exist_ok=True)
    report = Report(args.out / "gpu_check.md", args.device)
    report.write()
    start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    try:
        for name in chosen:
            estimate, check = CHECKS[name]
            left = args.budget_s - (time.perf_counter() - start)
            if not args.quick and left < estimate:
                report.add(name, [f"Skipped: {left:.0f} s of the budget left, the check takes ~{estimate:g} s."])
                continue
            log.info("check %s", name)
            tic = time.perf_counter()
            try:
                lines = check(args.device, args.quick, scratch, 600.0 if args.quick else left) \
                    if name in NEEDS_SCRATCH else check(args.device, args.quick)
            except Exception as exc:  # a failed check is a finding: report it and go on with the others
                log.exception("check %s failed", name)
                lines = [f"Failed: {type(exc).__name__}: {exc}"]
            report.add(f"{name} ({time.perf_counter() - tic:.0f} s)", lines)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report.path


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.stdout.write(main().read_text())
