"""The ``skip_stored`` sweeper (`conf/hydra/sweeper/skip_stored.yaml`, the default): Hydra's basic sweeper that
launches only the sweep points whose runs are not all stored, and turns failed jobs into one line each
(`experiments.execution.sweep`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class SkipStoredSweeper(BasicSweeper):
    """`BasicSweeper` (same expansion of the overrides, same batches) with ``skip_stored`` (default true)."""

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 skip_stored: bool = True) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.skip_stored = skip_stored

    def sweep(self, arguments: List[str]) -> Any:
        from experiments.execution import sweep

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params_conf = self._parse_config()
        params_conf.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params_conf), self.max_batch_size)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        returns: List[Sequence[JobReturn]] = []
        initial_job_idx = 0
        while not self.is_done():
            batch = self.get_job_batch()
            if self.skip_stored:
                batch = sweep.missing_points(self.config, batch)
            if not batch:
                continue
            if not validated_by_callback(self.config):
                tic = time.perf_counter()
                self.validate_batch_is_legal(batch)
                log.debug("validated configs of %d jobs in %.2f s", len(batch), time.perf_counter() - tic)
            results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
            sweep.check_returns(self.config, batch, results, initial_job_idx)  # one line per failed job
            initial_job_idx += len(batch)
            returns.append(results)
        return returns


#: The callback that composes and checks every sweep point before the sweep starts (`conf/config.yaml`).
VALIDATOR = "experiments.app.callbacks.ValidateSweep"


def validated_by_callback(config: Any) -> bool:
    """Whether `VALIDATOR` is among the sweep's callbacks: it has then composed every distinct point (those that
    differ in an integer seed alone, once) before any job, and Hydra's own legality check — composing every point
    again, ~0.1 s each — is skipped. A config without it (callbacks overridden) keeps Hydra's check."""
    callbacks = config.hydra.get("callbacks") or {}
    return any(str((callback or {}).get("_target_", "")) == VALIDATOR for callback in callbacks.values())
