"""The ``obsbench`` Hydra app: resolve the config, run the experiment's job, write rows, report.

``run(cfg)`` is a pure function of the config (it returns the job's rows); `main` is the thin Hydra wrapper
that turns configuration errors into a one-line message and a non-zero exit.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from experiments import errors
from experiments.app.callbacks import write_manifest, write_report

log = logging.getLogger(__name__)


class _HeldErrors(io.StringIO):
    """Holds what Hydra writes to stderr before the first job starts (config composition), so that a
    composition error can be shown as one line; released unchanged as soon as a job starts."""

    def __init__(self, stream: io.TextIOBase):
        super().__init__()
        self.stream = stream

    def release(self) -> None:
        if sys.stderr is self:
            sys.stderr = self.stream
            self.stream.write(self.getvalue())
            self.seek(0)
            self.truncate()

    def discard(self) -> str:
        """Stop holding; what was held is returned instead of written."""
        text = self.getvalue()
        if sys.stderr is self:
            sys.stderr = self.stream
        self.seek(0)
        self.truncate()
        return text

    @staticmethod
    def one_line(text: str) -> str:
        """Hydra's multi-line composition message folded into one line (options listed after a colon); of a
        traceback Hydra printed, only its last line (the exception)."""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if any(ln.startswith("Traceback (most recent call last)") for ln in lines):
            noise = (" ", "\t", "Traceback", "Set the env", "Error executing")
            raised = [ln for ln in lines if not ln.startswith(noise)]
            return raised[-1].strip() if raised else "unexpected error; rerun with HYDRA_FULL_ERROR=1 for the traceback"
        cut = next((i for i, ln in enumerate(lines) if ln.startswith(("Config search path", "Set the env"))), None)
        lines = lines[:cut]
        options = [ln.strip() for ln in lines if ln.startswith("\t")]
        text = [ln.strip().rstrip(":.") for ln in lines
                if not ln.startswith(("\t", " ", "To append", "Available options"))]
        message = "; ".join(text) or "invalid configuration"
        return f"{message} (available: {', '.join(options)})" if options else message


def run(cfg: DictConfig) -> pd.DataFrame:
    """Run the job of ``cfg.experiment`` (its kind's ``run``) and return its result rows."""
    from experiments.kinds import kind_of  # after `main` chose the figure backend: the kinds import pyplot

    return kind_of(cfg).run(cfg)


@hydra.main(version_base=None, config_path="pkg://conf", config_name="config")
def _app(cfg: DictConfig) -> None:
    if isinstance(sys.stderr, _HeldErrors):
        sys.stderr.release()
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        frame = run(cfg)
        write_manifest(out_dir, frame["run_id"].unique().tolist() if "run_id" in frame else [])
        if hydra_cfg.mode == RunMode.RUN:
            write_report(cfg, frame["run_id"].unique().tolist(), out_dir)
    except Exception as exc:  # one line (experiments.errors); Hydra would print a traceback
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        if errors.wants_traceback(hydra_cfg.verbose) or (multirun and not errors.stops_sweep(exc)):
            raise  # a job failure of its own: the sweeper reports it in one line and goes on with the others
        job = " ".join(str(o) for o in OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False))
        raise errors.refusal(exc, f"job {hydra_cfg.job.num} [{job}]" if multirun else "") from None


def main() -> None:
    """Console entry point ``obsbench``: every failure becomes one line on stderr and a non-zero exit status
    (`experiments.errors`) unless ``hydra.verbose`` or ``HYDRA_FULL_ERROR`` asks for everything."""
    # Figures are files: the app never opens a window (headless machines, joblib workers). Chosen here, by the
    # application, not by the plotting library at import time, so `plots` used from a notebook keeps its backend.
    os.environ.setdefault("MPLBACKEND", "Agg")
    verbose = os.environ.get("HYDRA_FULL_ERROR") == "1" or any(a.startswith("hydra.verbose") for a in sys.argv)
    if verbose or any(a in ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info") for a in sys.argv):
        with errors.boundary("obsbench", verbose=True):
            _app()
        return
    held = _HeldErrors(sys.stderr)
    sys.stderr = held
    try:
        with errors.boundary("obsbench", stream=held.stream):
            try:
                _app()
            except SystemExit as exc:
                reported = held.discard()
                if not isinstance(exc, errors.Refusal) and exc.code not in (0, None) and reported.strip():
                    # Hydra reported an error itself (composition, launcher) and exited: its report in one line
                    raise errors.Refusal(held.one_line(reported), int(exc.code) if isinstance(exc.code, int)
                                         else errors.FAILED) from None
                raise
            except BaseException:
                held.discard()  # what Hydra printed meanwhile (e.g. warnings) is replaced by the one line
                raise
    finally:
        held.release()


if __name__ == "__main__":
    main()
