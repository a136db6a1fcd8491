"""What a finished run holds (checkpoints, writes, events, signals, bytes), on its own row.

Counted once, in the transaction that finishes the run, from the run's own rows (index range
scans on its id), and added to ``run_totals`` (`totals`), which retention stats read instead
of millions of checkpoints; a purge knows from it which tables hold a run's rows. A finished
run gets no new rows (a fenced worker's writes fail, a signal to it is refused); a retried
run is counted again when it finishes again.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update

from . import totals
from .schema import checkpoint_writes, checkpoints, run_events, runs, signals

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("COUNTERS", "count_in", "measured")

#: The ``runs`` columns holding a finished run's footprint, by the table each counts.
COUNTERS = {
    "checkpoints": "n_checkpoints",
    "checkpoint_writes": "n_writes",
    "run_events": "n_events",
    "signals": "n_signals",
}


def measured(run_id: Any) -> dict[str, Any]:
    """Column values counting what run ``run_id`` (a column or a parameter) holds now."""

    def count(table: Any, column: Any) -> Any:
        return select(func.count()).select_from(table).where(column == run_id).scalar_subquery()

    def size(table: Any, column: Any, length: Any) -> Any:
        return func.coalesce(
            select(func.sum(length)).select_from(table).where(column == run_id).scalar_subquery(),
            0,
        )

    return {
        "n_checkpoints": count(checkpoints, checkpoints.c.thread_id),
        "n_writes": count(checkpoint_writes, checkpoint_writes.c.thread_id),
        "n_events": count(run_events, run_events.c.run_id),
        "n_signals": count(signals, signals.c.run_id),
        "checkpoint_bytes": size(
            checkpoints,
            checkpoints.c.thread_id,
            func.length(checkpoints.c.checkpoint) + func.length(checkpoints.c.metadata),
        )
        + size(
            checkpoint_writes, checkpoint_writes.c.thread_id, func.length(checkpoint_writes.c.value)
        ),
    }


def count_in(db: Database, conn: Connection, run_ids: Collection[str]) -> None:
    """Record on each run's row what it holds now, and count it in ``run_totals``.

    Inside the transaction finishing (or compacting) the runs.
    """
    if len(run_ids) == 1:
        (run_id,) = run_ids
        # Every run's end runs this: compiled once, it skips SQLAlchemy's execution path.
        statement = db.raw(
            "footprint.count",
            lambda: (
                update(runs).where(runs.c.id == bindparam("run_id")).values(**measured(runs.c.id))
            ),
        )
        db.execute_raw(conn, statement, {"run_id": run_id})
    elif run_ids:
        conn.execute(
            update(runs).where(runs.c.id.in_(sorted(run_ids))).values(**measured(runs.c.id))
        )
    totals.add(db, conn, run_ids)
