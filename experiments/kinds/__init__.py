"""The experiment kinds: what one Hydra job of ``experiment=<name>`` runs, and how the sweep reports.

A kind is three functions — ``run(cfg) -> rows`` (the job), ``report(rows, out_dir, cfg) -> paths`` (the
end-of-sweep figures and tables) and ``validate(cfg, checked)`` (before any job starts) — registered here by
name, so the dispatch can be read and followed: ``conf/experiment/<file>.yaml`` says ``kind: <name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from experiments.execution import runner
from experiments.kinds import (compare, conditioning, convergence, paper, phase_transition, pruning, robustness,
                               scaling, theory)


@dataclass(frozen=True)
class Kind:
    """The job, report and sweep-time validator of an experiment kind."""

    run: Callable[[Any], Any]
    report: Callable[..., list]
    validate: Callable[..., None] = runner.validate


KINDS: dict[str, Kind] = {
    "convergence": Kind(convergence.run, convergence.report),
    "conditioning": Kind(convergence.run, conditioning.report),
    "constants": Kind(theory.constants_job, convergence.report, theory.validate_constants),
    "rates": Kind(convergence.run, theory.rates_report),
    "paper": Kind(paper.run, paper.report, paper.validate),
    "phase_transition": Kind(phase_transition.run, phase_transition.report, phase_transition.validate),
    "scaling": Kind(scaling.run, scaling.report, scaling.validate),
    "compare": Kind(compare.run, compare.report, compare.validate),
    "robustness": Kind(robustness.run, robustness.report, robustness.validate),
    "pruning": Kind(pruning.run, pruning.report, pruning.validate),
}


def kind_of(cfg: Any) -> Kind:
    """The kind named by ``cfg.experiment.kind`` (one-line ``ValueError`` when unknown)."""
    name = cfg.experiment.get("kind")
    if name not in KINDS:
        raise ValueError(f"experiment.kind={name!r} must be one of {', '.join(sorted(KINDS))}")
    return KINDS[name]
