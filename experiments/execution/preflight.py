"""Checks made before any work: what a sweep point needs must exist before the first solve.

- integers the result store cannot hold (it stores int64) are refused (`check_integers`);
- the memory a problem needs is estimated from its dimensions before it is built (`check_memory`, called by
  `experiments.execution.runner.build` and ``prepare``), and refused with the bytes needed and available;
- the results root and Hydra's output folder must be folders that can be created and written (a probe file,
  removed after; `writable_folder`; the folders it made are removed if the run is refused);
- user files enter a run's identity by content (`content_digest`), so a changed file is a new run.

Every check raises a one-line ``ValueError``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_WORD = 8  # bytes of one float64


# ---------------------------------------------------------------------------------------------------- integers

def check_integers(node: Any, name: str) -> None:
    """Raise if an integer anywhere in ``node`` (a resolved config value: scalar, list or mapping) lies outside
    int64, the widest integer of the result store."""
    if isinstance(node, bool):
        return
    if isinstance(node, int):
        if not INT64_MIN <= node <= INT64_MAX:
            raise ValueError(f"{name}={node} is outside the 64-bit integer range the result store holds "
                             f"([{INT64_MIN}, {INT64_MAX}])")
    elif isinstance(node, Mapping):
        for key, value in node.items():
            check_integers(value, f"{name}.{key}")
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            check_integers(value, f"{name}[{index}]")


# ------------------------------------------------------------------------------------------------------ memory

def available_memory() -> int | None:
    """Bytes of memory a new allocation can get: MemAvailable of /proc/meminfo (else the free physical pages),
    capped by the cgroup limit of a container; None when unknown."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit.isdigit() and used.isdigit():
            found.append(max(int(limit) - int(used), 0))
    except OSError:
        pass
    return min(found) if found else None


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.3g} PiB"  # pragma: no cover


def _dimension(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def second_order(solver: Mapping[str, Any] | None) -> bool:
    """Whether the solver forms a d×d Hessian (the Newton-type solvers: their config has a ``damping`` or an
    ``epsilon`` added to it)."""
    return solver is not None and bool({"damping", "epsilon"} & set(solver))


def memory_estimate(problem: Mapping[str, Any], solver: Mapping[str, Any] | None = None) -> tuple[int, str] | None:
    """(bytes, what) a problem of these dimensions needs at least: its matrix A (m·d float64, rows ``m`` or ``n``)
    and the solver's working set (a Newton-type solver's d×d Hessian and its factor, otherwise one more m×d
    array); None when the config does not give the dimensions (real data, user files)."""
    d = _dimension(problem.get("d"))
    rows = _dimension(problem.get("m", problem.get("n")))
    if d is None or rows is None:
        return None
    words, parts = rows * d, [f"A {rows}x{d}"]
    if solver is not None:
        if second_order(solver):
            words += 2 * d * d
            parts.append(f"Hessian and factor {d}x{d}")
        else:
            words += rows * d
            parts.append(f"a working copy {rows}x{d}")
    return words * _WORD, " + ".join(parts) + " float64"


def check_memory(problem: Mapping[str, Any], solver: Mapping[str, Any] | None = None) -> None:
    """Raise before building a problem whose estimated memory (`memory_estimate`) exceeds what is available."""
    estimate = memory_estimate(problem, solver)
    available = available_memory()
    if estimate is None or available is None or estimate[0] <= available:
        return
    needed, what = estimate
    raise ValueError(f"this point needs at least {needed} bytes ({_size(needed)}: {what}) but {available} bytes "
                     f"({_size(available)}) of memory are available; reduce problem.d / problem.m")


# ------------------------------------------------------------------------------------------------- file system

#: Tries of `writable_folder` when a concurrent sweep removes the parent folders it is creating.
PROBE_ATTEMPTS = 5


def writable_folder(raw: Any, name: str, made: list[Path]) -> Path:
    """The folder ``raw`` as an absolute path, after checking that it can be created and written (a probe file is
    written and removed).

    The folders it creates are appended to ``made``, for the caller to remove (`remove_folders`) if a later check
    refuses the run, and kept if the run goes on: two sweeps started together share dated parents
    (``outputs/multirun/<day>``), and a probe that removed what it made could pull a parent from under the other
    sweep's Hydra while it creates its own folder.
    A parent that another sweep makes meanwhile is used and left to it; one that vanishes meanwhile is made again
    (up to `PROBE_ATTEMPTS` tries).
    """
    text = "" if raw is None else str(raw).strip()
    if not text:
        raise ValueError(f"{name} is empty: give a folder")
    path = Path(text).expanduser().resolve()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        if existing == path:
            raise ValueError(f"{name}={text} is a file, not a folder")
        raise ValueError(f"{name}={text} cannot be a folder: {existing} is a file")
    missing = list(reversed([path, *path.parents][: len(path.relative_to(existing).parts)]))
    created: list[Path] = []
    try:
        for attempt in range(PROBE_ATTEMPTS):
            try:
                for folder in missing:
                    try:
                        folder.mkdir()
                    except FileExistsError:
                        if folder.is_dir():  # made meanwhile by a concurrent sweep (or an earlier try): use it
                            continue
                        raise
                    created.append(folder)
                probe = path / f".probe-{os.getpid()}.tmp"
                probe.write_bytes(b"obsbench")
                probe.unlink()
                break
            except FileNotFoundError:  # a parent vanished meanwhile (a concurrent sweep that was refused)
                if attempt == PROBE_ATTEMPTS - 1:
                    raise ValueError(f"{name}={text} cannot be created (its parent folders keep vanishing): "
                                     "give a writable folder") from None
    except OSError as exc:
        remove_folders(created)
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"{name}={text} cannot be created or written ({reason.lower()}): "
                         "give a writable folder") from None
    except ValueError:
        remove_folders(created)
        raise
    made.extend(created)
    return path


def remove_folders(folders: list[Path]) -> None:
    """Remove folders `writable_folder` made, deepest first; one that something else wrote into is left."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


# ----------------------------------------------------------------------------------------------- user files

#: Keys of a problem config that name a user's file or folder.
FILE_KEYS = ("path",)


@functools.lru_cache(maxsize=256)
def _digest(path: str, stamp: tuple) -> str:
    del stamp  # part of the cache key only: a rewritten file is hashed again
    target = Path(path)
    files = sorted(p for p in target.iterdir() if p.is_file()) if target.is_dir() else [target]
    sha = hashlib.sha256()
    for file in files:
        sha.update(file.name.encode() if target.is_dir() else b"")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()[:16]


def _stamp(target: Path) -> tuple:
    files: Iterable[Path] = sorted(p for p in target.iterdir() if p.is_file()) if target.is_dir() else [target]
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino) for p in files)


def content_digest(problem: Mapping[str, Any]) -> str:
    """A hash of the content of the user files the problem reads (``path`` keys: a file, or every file of a
    folder); "" when it reads none or the file is missing (the problem's own error then names it)."""
    digests = []
    for key in FILE_KEYS:
        value = problem.get(key)
        if not isinstance(value, str) or not value:
            continue
        target = Path(value).expanduser()
        try:
            if target.exists():
                digests.append(_digest(str(target.resolve()), _stamp(target)))
        except OSError:
            continue  # unreadable: building the problem reports it
    return "+".join(digests)
