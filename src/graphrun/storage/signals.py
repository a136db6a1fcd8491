"""Signal mailboxes: durable messages to a run, each consumed by exactly one wait, in order.

A signal is stored and, when the run already waits for it, delivered in the same
transaction: the wait's interrupt gets the payload as its resume value and the run is
queued. A signal nobody waits for stays in the mailbox until a wait for its name comes;
the executor looks there in the transaction that would make the run wait (`deliver_queued`),
so a signal is never both stored and missed. On PostgreSQL the run row is locked first
(``FOR UPDATE``), which orders a signal against the worker's wait; SQLite's single writer
orders them anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from graphrun import waits

from .records import Run, SignalRecord, WaitingOn
from .schema import runs, signals

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = (
    "Delivered",
    "consume",
    "deliver_queued",
    "list_for_run",
    "lock_run",
    "signal_waits",
)


@dataclass(frozen=True, kw_only=True)
class Delivered:
    """A mailbox signal that answered a wait."""

    interrupt_id: str
    resume_value: dict[str, Any]
    #: The ``signal`` event's data.
    event: dict[str, Any]


def lock_run(db: Database, conn: Connection, run_id: str) -> Run | None:
    """Read the run, locking its row until the transaction ends (PostgreSQL).

    Every change that meets a signal with a wait (sending, making a run wait) takes this
    lock first, so the two are ordered; SQLite's single writer orders them anyway.
    """
    row = conn.execute(select(runs).where(runs.c.id == run_id).with_for_update()).mappings().first()
    return None if row is None else Run.from_row(row)


#: The signal a child run sends its parent when it ends: this prefix and the child's id.
CHILD_SIGNAL = "graphrun.child."


def signal_waits(run: Run) -> list[WaitingOn]:
    """The run's waits a signal can answer."""
    return [w for w in run.waiting_for if w.kind.takes_signals]


def consume(
    db: Database, conn: Connection, pairs: Sequence[tuple[int, str]]
) -> list[dict[str, Any]]:
    """Mark signals consumed by the interrupts that took them: ``(signal id, interrupt id)``."""
    rows = []
    for signal_id, interrupt_id in pairs:
        row = (
            conn.execute(
                update(signals)
                .where(signals.c.id == signal_id, signals.c.consumed_at.is_(None))
                .values(consumed_at=db.now(), interrupt_id=interrupt_id)
                .returning(signals)
            )
            .mappings()
            .one()
        )
        rows.append(dict(row))
    return rows


def deliver_queued(
    db: Database, conn: Connection, run_id: str, open_waits: Sequence[WaitingOn]
) -> list[Delivered]:
    """Inside the transaction that would make a run wait: consume mailbox signals it waits for.

    Each signal wait gets the oldest unconsumed signal of its name (two waits on one name
    get the two oldest, in order).

    Returns:
        The waits answered now, with their resume values; empty if none.
    """
    wanted = [w for w in open_waits if w.kind.takes_signals and w.name is not None]
    if not wanted:
        return []
    names = sorted({w.name for w in wanted if w.name is not None})
    pending = conn.execute(
        select(signals.c.id, signals.c.name, signals.c.payload)
        .where(
            signals.c.run_id == run_id,
            signals.c.consumed_at.is_(None),
            signals.c.name.in_(names),
        )
        .order_by(signals.c.id)
    ).all()
    by_name: dict[str, list[Any]] = {}
    for row in pending:
        by_name.setdefault(row.name, []).append(row)
    pairs: list[tuple[int, str]] = []
    delivered: list[Delivered] = []
    for wait in wanted:
        queue = by_name.get(wait.name or "")
        if queue:
            row = queue.pop(0)
            pairs.append((row.id, wait.id))
            delivered.append(
                Delivered(
                    interrupt_id=wait.id,
                    resume_value=waits.signal_answer(row.payload),
                    event={"name": row.name, "signal_id": row.id, "interrupt_id": wait.id},
                )
            )
    consume(db, conn, pairs)
    return delivered


async def list_for_run(db: Database, run_id: str, *, limit: int = 1000) -> list[SignalRecord]:
    """A run's signals, consumed or not, in the order sent."""
    rows = await db.rows(
        select(signals).where(signals.c.run_id == run_id).order_by(signals.c.id).limit(limit)
    )
    return [SignalRecord.from_row(row) for row in rows]
