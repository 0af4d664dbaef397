"""Running the real ``obsbench`` command line from a benchmark, in a fresh results / outputs root."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CliRun:
    """The outcome of one ``obsbench`` invocation."""

    seconds: float
    returncode: int
    tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def obsbench_executable() -> str:
    """The ``obsbench`` console script next to the running interpreter (the project's virtual environment)."""
    candidate = Path(sys.executable).with_name("obsbench")
    return str(candidate) if candidate.exists() else shutil.which("obsbench") or "obsbench"


def run_obsbench(args: Sequence[str], root: Path, env: dict[str, str] | None = None,
                 timeout: float | None = None) -> CliRun:
    """Run ``obsbench *args`` with ``OBSBENCH_RESULTS`` / ``OBSBENCH_OUTPUTS`` under ``root`` (created empty, so
    nothing is resumed from an earlier run) and return its wall time, exit status and the end of its log."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    environment = {**os.environ, "OBSBENCH_RESULTS": str(root / "results"), "OBSBENCH_OUTPUTS": str(root / "outputs"),
                   **(env or {})}
    command = [obsbench_executable(), *args]
    log.info("running %s", " ".join(command))
    tic = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True,
                                   timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return CliRun(time.perf_counter() - tic, 124, f"timed out after {exc.timeout:g} s")
    seconds = time.perf_counter() - tic
    tail = (completed.stdout + completed.stderr)[-2000:]
    if completed.returncode != 0:
        log.warning("obsbench exited with %d:\n%s", completed.returncode, tail)
    return CliRun(seconds, completed.returncode, tail)
