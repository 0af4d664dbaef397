"""Benchmark rows, the machine they ran on, and the CSV / markdown files they are written to."""

from __future__ import annotations

import csv
import datetime
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_info

COLUMNS = ("group", "target", "value", "unit", "reference", "ratio", "threshold", "sense", "met", "note",
           "machine", "date")


@dataclass(frozen=True)
class Row:
    """One measured target.

    Parameters
    ----------
    group : str
        Benchmark group (module) that measured it.
    target : str
        What is measured, with its size.
    value : float
        The measured quantity, in ``unit``.
    unit : str
        Unit of ``value`` and ``reference``.
    reference : float
        The baseline measured side by side (hardware floor, peer, reference solver); NaN when the value itself
        is checked against the threshold (a budget, a count, an agreement).
    threshold : float
        The target: ``ratio`` (or ``value`` without a reference) must be ``sense`` this; NaN for rows that are
        reported without a target.
    sense : {"<=", ">="}
        Direction of the target.
    note : str
        How it was measured, and for a missed target why and what would close it.
    """

    group: str
    target: str
    value: float
    unit: str
    reference: float = math.nan
    threshold: float = math.nan
    sense: str = "<="
    note: str = ""

    @property
    def ratio(self) -> float:
        """value / reference (NaN without a reference)."""
        if not np.isfinite(self.reference) or self.reference == 0:
            return math.nan
        return self.value / self.reference

    @property
    def checked(self) -> float:
        """The number compared with the threshold: the ratio when there is a reference, else the value."""
        return self.ratio if np.isfinite(self.reference) else self.value

    @property
    def met(self) -> str:
        """``yes`` / ``no``, or ``n/a`` for rows without a target or without a measurement."""
        if not np.isfinite(self.threshold) or not np.isfinite(self.checked):
            return "n/a"
        ok = self.checked <= self.threshold if self.sense == "<=" else self.checked >= self.threshold
        return "yes" if ok else "no"


@dataclass(frozen=True)
class Machine:
    """Where and when the benchmarks ran."""

    description: str
    blas: str
    date: str = field(default_factory=lambda: datetime.datetime.now().astimezone().isoformat(timespec="seconds"))

    @classmethod
    def current(cls, blas_threads: int) -> Machine:
        """This machine: CPU model, cores, OS, Python, numpy, BLAS library, and the 1-minute load at start."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
        description = (f"{cpu_model()}, {cores} cores (os.cpu_count={os.cpu_count()}), {platform.system()} "
                       f"{platform.release()}, Python {platform.python_version()}, numpy {np.__version__}, "
                       f"load average at start {load:.1f}")
        return cls(description=description, blas=blas_description(blas_threads))


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_description(blas_threads: int) -> str:
    """The BLAS libraries loaded (threadpoolctl) and the thread limit the in-process timings use."""
    libraries = sorted({f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture', '?')})"
                        for info in threadpool_info() if info.get("user_api") == "blas"})
    return f"{', '.join(libraries) or 'unknown BLAS'}; timings with {blas_threads} BLAS thread(s)"


def format_number(value: float) -> str:
    """Three significant digits, or an em dash for NaN."""
    if not np.isfinite(value):
        return "—"
    return f"{value:.3g}"


def write_csv(rows: Sequence[Row], machine: Machine, path: Path) -> Path:
    """One line per row, with the derived ratio / met columns and the machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**asdict(row), "ratio": row.ratio, "met": row.met,
                             "machine": f"{machine.description}; {machine.blas}", "date": machine.date})
    return path


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table (what the README's performance table shows)."""
    lines = ["| group | target | measured | reference | ratio | target | met | note |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        goal = f"{row.sense} {format_number(row.threshold)}" if np.isfinite(row.threshold) else ""
        reference = f"{format_number(row.reference)} {row.unit}" if np.isfinite(row.reference) else ""
        lines.append(f"| {row.group} | {row.target} | {format_number(row.value)} {row.unit} | {reference} | "
                     f"{format_number(row.ratio)} | {goal} | {row.met} | {row.note} |")
    return "\n".join(lines)


def write_markdown(rows: Sequence[Row], machine: Machine, path: Path, command: str, elapsed_s: float) -> Path:
    """The table with a header naming the machine, the date, the command and how long the run took."""
    missed = [row for row in rows if row.met == "no"]
    header = [f"# obsbench performance ({machine.date})", "",
              f"- machine: {machine.description}", f"- BLAS: {machine.blas}",
              f"- command: `{command}` ({elapsed_s / 60:.1f} min)",
              f"- targets met: {sum(row.met == 'yes' for row in rows)}, missed: {len(missed)}, "
              f"not measured (a failed command) or without a target: {sum(row.met == 'n/a' for row in rows)}", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n" + markdown_table(rows) + "\n")
    return path


def rows_as_dicts(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows with their derived columns, e.g. for a DataFrame."""
    return [{**asdict(row), "ratio": row.ratio, "met": row.met} for row in rows]
