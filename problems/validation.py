"""One way to validate configuration values: small checks that raise a one-line error naming the parameter.

Used by the problem generators, the solvers (with ``error=SolverConfigError``) and the experiment kinds, so a
bad value reads the same wherever it is caught: ``k=0 must be an integer in [1, 128]``. Booleans are never
accepted as numbers (``True`` is an ``int`` to Python, not to a user). Every check returns the value,
converted (``int`` / ``float``), so a call can validate and normalise at once.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

ValueErrorType = type[ValueError]


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def require(condition: bool, message: str, error: ValueErrorType = ValueError) -> None:
    """Raise ``error(message)`` unless ``condition``."""
    if not condition:
        raise error(message)


def integer(name: str, value: Any, low: int | None = None, high: int | None = None, *, what: str = "",
            error: ValueErrorType = ValueError) -> int:
    """An integer in [low, high] (either end may be open: None). ``what`` names a bound in the message,
    e.g. ``"d=128"`` for high = d."""
    ok = _is_integer(value) and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        if low is not None and high is not None:
            span = f"in [{low}, {what or high}]"
        elif low is not None:
            span = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
            raise error(f"{name}={value!r} must be {span}")
        elif high is not None:
            span = f"<= {what or high}"
        else:
            span = ""
        raise error(f"{name}={value!r} must be an integer {span}".rstrip())
    return int(value)


def number(name: str, value: Any, low: float | None = None, high: float | None = None, *, strict_low: bool = False,
           strict_high: bool = False, allow_none: bool = False, error: ValueErrorType = ValueError) -> float | None:
    """A finite number in the interval given by ``low`` / ``high`` (closed unless ``strict_*``); None passes
    when ``allow_none``."""
    if value is None and allow_none:
        return None
    ok = _is_number(value) and bool(np.isfinite(value))
    if ok and low is not None:
        ok = value > low if strict_low else value >= low
    if ok and high is not None:
        ok = value < high if strict_high else value <= high
    if not ok:
        parts = []
        if low is not None:
            parts.append(f"{'>' if strict_low else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if strict_high else '<='} {high:g}")
        raise error(f"{name}={value!r} must be a finite number" + (f" {' and '.join(parts)}" if parts else ""))
    return float(value)


def positive(name: str, value: Any, allow_none: bool = False, error: ValueErrorType = ValueError) -> float | None:
    """A finite number > 0 (None passes when ``allow_none``)."""
    return number(name, value, low=0.0, strict_low=True, allow_none=allow_none, error=error)


def flag(name: str, value: Any, error: ValueErrorType = ValueError) -> bool:
    """A boolean (not 0/1, not a string)."""
    require(isinstance(value, (bool, np.bool_)), f"{name}={value!r} must be true or false", error)
    return bool(value)


def choice(name: str, value: Any, options: Iterable[Any], error: ValueErrorType = ValueError) -> Any:
    """One of ``options``."""
    options = tuple(options)
    require(value in options, f"{name}={value!r} must be one of {', '.join(map(str, options))}", error)
    return value


#: The largest integer the result store holds (its integer columns are int64).
INT64_MAX = 2**63 - 1


def seed(value: Any, name: str = "seed") -> int:
    """A random seed: a non-negative integer the result store can hold (int64)."""
    return integer(name, value, low=0, high=INT64_MAX, what="2**63-1, the largest the result store holds")
