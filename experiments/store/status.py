"""Which stored runs are results.

A run ended by the scheduler (time limit, pre-emption, ``scancel``: `experiments.execution.interrupt`) is kept in
the store with status ``interrupted`` and the cause in ``message`` — so reports and ``obsbench-collect`` show
what happened — but it is not a result: `experiments.store.results.ResultStore.has` does not count it, and the
next run of the same command recomputes it and replaces the record. Every other status (``ok``, ``max_iter``,
``stalled``, ``diverged``, ``error``, ``timeout`` — the solver's own ``time_budget``) is a solver outcome, and final.
"""

from __future__ import annotations

from pathlib import Path

#: Status of a run ended by the scheduler, not by the solver.
INTERRUPTED = "interrupted"
#: Statuses that do not make a run stored.
NOT_FINAL = frozenset({INTERRUPTED})


def is_final(path: Path) -> bool:
    """Whether the stored run file ``path`` holds a result (no row with a status in `NOT_FINAL`); reads the
    ``status`` column only. A file without one counts as final; an unreadable (damaged) one does not."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
        if "status" not in handle.schema_arrow.names:
            return True
        statuses = handle.read(columns=["status"]).column("status").unique().to_pylist()
    except (OSError, ValueError, TypeError):  # pyarrow raises ArrowInvalid (a ValueError) for damaged files
        return False  # no result: the run is computed again (and the damaged file replaced)
    return not NOT_FINAL.intersection(s for s in statuses if isinstance(s, str))
