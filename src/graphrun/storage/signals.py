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

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from graphrun import errors, waits

from . import events
from . import runs as runs_store
from .records import Run, RunStatus, SignalRecord, SignalSent, WaitingOn
from .schema import runs, signals

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = (
    "Delivered",
    "deliver_queued",
    "list_for_run",
    "lock_run",
    "send",
    "send_in",
    "tell_parent",
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


def _signal_waits(run: Run) -> list[WaitingOn]:
    return [w for w in run.waiting_for if w.kind.takes_signals]


async def send(
    db: Database,
    run_id: str,
    name: str,
    payload: Any,
    *,
    max_queued: int,
    check: Callable[[WaitingOn, Any], None] | None = None,
    claim_for: str | None = None,
    lease_ttl_s: float = 0.0,
) -> SignalSent:
    """Store a signal for a run and, if the run waits for this name, deliver it.

    Args:
        db: The database.
        run_id: The run.
        name: The signal's name.
        payload: Its JSON payload (already validated against the declared schema).
        max_queued: How many unconsumed signals a run's mailbox may hold.
        check: Called with the wait and the payload before a delivery (validates against
            the wait's own schema); an exception stores nothing.
        claim_for: The worker that claims the run on delivery (a local one with room).
        lease_ttl_s: That claim's lease lifetime.

    Raises:
        RunNotFound: No such run.
        TransitionConflict: The run has ended.
        SignalQueueFull: The mailbox is full.
    """
    return await db.write(
        lambda conn: send_in(
            db,
            conn,
            run_id,
            name,
            payload,
            max_queued=max_queued,
            check=check,
            claim_for=claim_for,
            lease_ttl_s=lease_ttl_s,
        )
    )


def send_in(
    db: Database,
    conn: Connection,
    run_id: str,
    name: str,
    payload: Any,
    *,
    max_queued: int,
    check: Callable[[WaitingOn, Any], None] | None = None,
    claim_for: str | None = None,
    lease_ttl_s: float = 0.0,
) -> SignalSent:
    """`send` inside a write transaction the caller already holds."""
    run = lock_run(db, conn, run_id)
    if run is None:
        raise errors.RunNotFound(run_id)
    if run.status.terminal:
        raise errors.TransitionConflict(run_id, "signal", run.status.value)
    waiting = run.status is RunStatus.WAITING
    wait = next((w for w in _signal_waits(run) if w.name == name and waiting), None)
    if wait is None:  # it would stay in the mailbox: is there room?
        queued = conn.execute(
            select(func.count())
            .select_from(signals)
            .where(signals.c.run_id == run_id, signals.c.consumed_at.is_(None))
        ).scalar_one()
        if queued >= max_queued:
            raise errors.SignalQueueFull(run_id, max_queued)
    if wait is not None and check is not None:
        check(wait, payload)
    row = (
        conn.execute(
            insert(signals)
            .values(run_id=run_id, name=name, payload=payload, created_at=db.now())
            .returning(signals)
        )
        .mappings()
        .one()
    )
    if wait is None:
        queued_event = {"name": name, "signal_id": row["id"]}
        events.append(db, conn, [(run_id, "signal_queued", queued_event)])
        return SignalSent(signal=SignalRecord.from_row(row), run=run, delivered=False)
    consumed = _consume(db, conn, [(row["id"], wait.id)])
    changed = _queue_with(db, conn, run, {wait.id: row}, claim_for, lease_ttl_s)
    return SignalSent(signal=SignalRecord.from_row(consumed[0]), run=changed, delivered=True)


def tell_parent(db: Database, conn: Connection, child: Run) -> None:
    """In the transaction that ends a child run: signal its parent how it ended.

    The parent's ``run_workflow`` wait takes the signal (at once if it waits, else from
    its mailbox), so the parent continues exactly once, whatever the order of events. A
    parent that ended meanwhile is left alone.
    """
    if child.parent_id is None:
        return
    payload = {
        "run_id": child.id,
        "workflow": child.workflow,
        "status": child.status.value,
        "output": child.output if child.status is RunStatus.COMPLETED else None,
        "error": None if child.error is None else replace(child.error, traceback=None).to_json(),
    }
    with contextlib.suppress(errors.RunNotFound, errors.TransitionConflict):
        send_in(db, conn, child.parent_id, CHILD_SIGNAL + child.id, payload, max_queued=2**31)


def _consume(
    db: Database, conn: Connection, pairs: Sequence[tuple[int, str]]
) -> list[dict[str, Any]]:
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


def _queue_with(
    db: Database,
    conn: Connection,
    run: Run,
    delivered: dict[str, Any],
    claim_for: str | None,
    lease_ttl_s: float,
) -> Run:
    resume = {**(run.resume or {})}
    resume |= {iid: waits.signal_answer(row["payload"]) for iid, row in delivered.items()}
    return runs_store.transition_in(
        db,
        conn,
        run.id,
        action="signal",
        allowed=(RunStatus.WAITING,),
        values={"status": RunStatus.QUEUED, "resume": resume, "waiting_for": None},
        seen_version=run.version,
        extra_events=[
            ("signal", {"name": row["name"], "signal_id": row["id"], "interrupt_id": iid})
            for iid, row in delivered.items()
        ],
        claim_for=claim_for,
        lease_ttl_s=lease_ttl_s,
    )


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
    _consume(db, conn, pairs)
    return delivered


async def list_for_run(db: Database, run_id: str, *, limit: int = 1000) -> list[SignalRecord]:
    """A run's signals, consumed or not, in the order sent."""
    rows = await db.rows(
        select(signals).where(signals.c.run_id == run_id).order_by(signals.c.id).limit(limit)
    )
    return [SignalRecord.from_row(row) for row in rows]
