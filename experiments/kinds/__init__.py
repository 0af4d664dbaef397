"""The experiment kinds: what one Hydra job of ``experiment=<name>`` runs, and how the sweep reports.

A kind is three functions — ``job(cfg) -> rows`` (the job), ``report(rows, out_dir, cfg) -> paths`` (the
end-of-sweep figures and tables) and ``validate(cfg, checked)`` (before any job starts) — registered here by
name, so the dispatch can be read and followed: ``conf/experiment/<file>.yaml`` says ``kind: <name>``.

`Kind.run` runs the job and records which runs belong to it (`experiments.store.manifest`): the report receives
exactly the runs of its sweep, labelled with the experiment (and part) they play in it, whether a job computed
them or found them stored by another experiment. A job's rows may carry a ``part`` column (with ``experiment``
set to the part's name, as `experiments.kinds.compare` does); otherwise every run plays ``experiment.name``.

The kinds import `plots` (matplotlib, ~0.7 s) inside the functions that draw, not at the top: validating a
sweep, refusing a bad config and a joblib worker then never pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from hydra.core.hydra_config import HydraConfig

from experiments.execution import interrupt, runner
from experiments.kinds import (compare, conditioning, convergence, paper, phase_transition, pruning, robustness,
                               scaling, second_order, theory)
from experiments.store import manifest


@dataclass(frozen=True)
class Kind:
    """The job, report and sweep-time validator of an experiment kind."""

    job: Callable[[Any], pd.DataFrame]
    report: Callable[..., list]
    validate: Callable[..., None] = runner.validate
    #: The job's memberships without running it (None: cannot tell before running); lets a sweep skip points
    #: whose runs are all stored (`experiments.execution.sweep`).
    plan: Callable[[Any], pd.DataFrame] | None = None

    def run(self, cfg: Any) -> pd.DataFrame:
        """Run the job and return its rows; inside a Hydra job, also write the job's manifest (its runs, each
        with the experiment and part it plays) into the job's output folder and a copy into the results root.
        A job ended by the scheduler (`experiments.execution.interrupt`) raises `JobInterrupted` after listing
        its planned runs."""
        try:
            with interrupt.scheduler_signals():
                frame = self.job(cfg)
        except (interrupt.Interrupted, interrupt.JobInterrupted) as stop:
            self._list_planned(cfg)
            if isinstance(stop, interrupt.Interrupted):
                raise interrupt.JobInterrupted(stop.cause) from stop.original
            raise
        if HydraConfig.initialized():
            members = manifest.job_members(frame, str(cfg.experiment.name))
            manifest.write_job_manifest(Path(HydraConfig.get().runtime.output_dir), members,
                                        runner.results_root(cfg))
        return frame

    def _list_planned(self, cfg: Any) -> None:
        """Write the manifest of an interrupted job from its plan, so that its report shows the record."""
        if self.plan is not None and HydraConfig.initialized():
            manifest.write_job_manifest(Path(HydraConfig.get().runtime.output_dir), self.plan(cfg),
                                        runner.results_root(cfg))


KINDS: dict[str, Kind] = {
    "convergence": Kind(convergence.run, convergence.report, plan=convergence.plan),
    "conditioning": Kind(convergence.run, conditioning.report, plan=convergence.plan),
    "constants": Kind(theory.constants_job, convergence.report, theory.validate_constants),
    "rates": Kind(convergence.run, theory.rates_report, plan=convergence.plan),
    "paper": Kind(paper.run, paper.report, paper.validate),
    "phase_transition": Kind(phase_transition.run, phase_transition.report, phase_transition.validate),
    "scaling": Kind(scaling.run, scaling.report, scaling.validate),
    "compare": Kind(compare.run, compare.report, compare.validate),
    "robustness": Kind(robustness.run, robustness.report, robustness.validate),
    "pruning": Kind(pruning.run, pruning.report, pruning.validate),
    "second_order": Kind(second_order.run, second_order.report, plan=convergence.plan),
}


def kind_of(cfg: Any) -> Kind:
    """The kind named by ``cfg.experiment.kind`` (one-line ``ValueError`` when unknown)."""
    name = cfg.experiment.get("kind")
    if name not in KINDS:
        raise ValueError(f"experiment.kind={name!r} must be one of {', '.join(sorted(KINDS))}")
    return KINDS[name]
