"""Run events: status changes and finished nodes, appended in the transaction that caused them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from .records import EventRecord
from .schema import run_events

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("append", "list_for_run")


def append(db: Database, conn: Connection, rows: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
    """Append ``(run_id, kind, data)`` events inside the caller's write transaction."""
    if not rows:
        return
    statement = db.statement(
        "events.append", lambda: insert(run_events).values(created_at=db.now())
    )
    conn.execute(statement, [{"run_id": r, "kind": k, "data": d} for r, k, d in rows])


async def list_for_run(
    db: Database, run_id: str, *, after_id: int = 0, limit: int = 1000
) -> list[EventRecord]:
    """Events of one run after ``after_id``, oldest first (index run_id, id)."""
    rows = await db.rows(
        select(run_events)
        .where(run_events.c.run_id == run_id, run_events.c.id > after_id)
        .order_by(run_events.c.id)
        .limit(limit)
    )
    return [EventRecord.from_row(row) for row in rows]
