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
from omegaconf import DictConfig

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

    def one_line(self) -> str:
        """Hydra's multi-line composition message folded into one line (options listed after a colon)."""
        lines = [ln for ln in self.getvalue().splitlines() if ln.strip()]
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
    except ValueError as exc:  # configuration errors: one line, non-zero exit, nothing written
        if hydra_cfg.verbose:
            raise
        sys.stderr.write(f"obsbench: error: {exc}\n")
        raise SystemExit(2) from None
    write_manifest(out_dir, frame["run_id"].unique().tolist() if "run_id" in frame else [])
    if hydra_cfg.mode == RunMode.RUN:
        write_report(cfg, frame["run_id"].unique().tolist(), out_dir)


def main() -> None:
    """Console entry point ``obsbench``: composition errors become one line unless ``hydra.verbose`` or
    ``HYDRA_FULL_ERROR`` asks for everything."""
    # Figures are files: the app never opens a window (headless machines, joblib workers). Chosen here, by the
    # application, not by the plotting library at import time, so `plots` used from a notebook keeps its backend.
    os.environ.setdefault("MPLBACKEND", "Agg")
    verbose = os.environ.get("HYDRA_FULL_ERROR") == "1" or any(a.startswith("hydra.verbose") for a in sys.argv)
    if verbose or any(a in ("-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info") for a in sys.argv):
        _app()
        return
    held = _HeldErrors(sys.stderr)
    sys.stderr = held
    try:
        _app()
    except SystemExit as exc:
        if sys.stderr is held and exc.code not in (0, None):
            sys.stderr = held.stream
            sys.stderr.write(f"obsbench: error: {held.one_line()}\n")
        raise
    finally:
        held.release()


if __name__ == "__main__":
    main()
