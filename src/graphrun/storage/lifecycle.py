"""A run's lifecycle: every change of a run with what follows it, in the same transaction.

`storage.runs` makes the compare-and-set on the run's row and nothing more; here each change
(a start, a transition, a claim, an expired lease, a signal) gets what follows it: its
events, the finished run's footprint and totals, the ``NOTIFY`` that wakes other processes'
workers, and a child's end told to its parent, which is a signal to the parent, which is a
transition of the parent. That is why delivering signals lives here too: it is a change of a
run like the others, built on the mailbox queries of `storage.signals`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy import insert as sql_insert

from graphrun import errors, waits

from . import events, footprint, signals, totals
from . import runs as runs_store
from .records import Fence, Run, RunStatus, SignalRecord, SignalSent, WaitingOn
from .runs import NewRun
from .schema import runs
from .schema import signals as signals_table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = (
    "claim",
    "insert",
    "insert_in",
    "requeue_expired",
    "send",
    "send_in",
    "tell_parent",
    "transition",
    "transition_in",
)


async def insert(db: Database, new: NewRun) -> tuple[Run, bool]:
    """Create a run, or return the run its idempotency key already started.

    The run is queued, or, with ``claim_for``, already running under that worker's lease
    (epoch 1), which saves the starting process a separate claim.

    Returns:
        The run and whether it was created now.

    Raises:
        IdempotencyConflict: The key started a run with a different input.
    """
    return await db.write(lambda conn: insert_in(db, conn, new))


def insert_in(db: Database, conn: Connection, new: NewRun) -> tuple[Run, bool]:
    """`insert` inside a write transaction the caller already holds."""
    run, created = runs_store.insert_row_in(db, conn, new)
    if created:
        started: list[tuple[str, str, dict[str, Any]]] = [(new.id, "status", {"status": "queued"})]
        if new.claim_for is not None:
            started.append((new.id, "status", {"status": "running", "attempt": 1}))
        events.append(db, conn, started)
        if new.claim_for is None:
            db.notify_queued(conn, {new.workflow})
    return run, created


async def transition(
    db: Database,
    run_id: str,
    *,
    action: str,
    allowed: Collection[RunStatus],
    change: runs_store.Change,
    seen_version: int | None = None,
    fence: Fence | None = None,
    extra_events: Collection[tuple[str, dict[str, Any]]] = (),
    before: Callable[[Connection], None] | None = None,
    claim_for: str | None = None,
    lease_ttl_s: float = 0.0,
    cancel_wins: bool = False,
) -> Run:
    """Apply one compare-and-set transition and record its event.

    Args:
        db: The database.
        run_id: The run to change.
        action: What is being done, for the conflict message (``resume``, ``cancel``...).
        allowed: Statuses the run may be in for the change to apply.
        change: What to write on the run (its new status, if any).
        seen_version: The version the caller read; the change applies only if unchanged.
        fence: The lease the writer must still hold.
        extra_events: More ``(kind, data)`` events to record in the same transaction.
        claim_for: For a change to ``queued``: claim the run for this worker instead, in the
            same statement (a local worker with room), under a new lease epoch.
        lease_ttl_s: The lease's lifetime with ``claim_for``.
        cancel_wins: For a change to a non-terminal status: if a cancel was requested
            meanwhile, the run becomes ``cancelled`` instead.
        before: An optional function ``f(conn)`` run in the transaction once the change
            applied, before its events (e.g. flushing buffered checkpoint writes and the
            node events that precede the status change), so it commits or fails with it.

    Raises:
        RunNotFound: No such run.
        TransitionConflict: The run's status or version did not match.
        LeaseLost: ``fence`` no longer holds the lease.
    """

    def job(conn: Connection) -> Run:
        return transition_in(
            db,
            conn,
            run_id,
            action=action,
            allowed=allowed,
            change=change,
            seen_version=seen_version,
            fence=fence,
            extra_events=extra_events,
            claim_for=claim_for,
            lease_ttl_s=lease_ttl_s,
            cancel_wins=cancel_wins,
            before=before,
        )

    return await db.write(job)


def transition_in(
    db: Database,
    conn: Connection,
    run_id: str,
    *,
    action: str,
    allowed: Collection[RunStatus],
    change: runs_store.Change,
    seen_version: int | None = None,
    fence: Fence | None = None,
    extra_events: Collection[tuple[str, dict[str, Any]]] = (),
    claim_for: str | None = None,
    lease_ttl_s: float = 0.0,
    cancel_wins: bool = False,
    before: Callable[[Connection], None] | None = None,
) -> Run:
    """`transition` inside a write transaction the caller already holds."""
    status = change.status
    claimed = claim_for is not None and status is RunStatus.QUEUED
    leaving = None
    if status is not None and not status.terminal and any(s.terminal for s in allowed):
        # Leaving a finished status (a retry): counted out of the totals as it is now. Its
        # row is locked first, as the purge locks runs before totals.
        leaving = _locked_row(db, conn, run_id)
    run = runs_store.compare_and_set_in(
        db,
        conn,
        run_id,
        action=action,
        allowed=allowed,
        change=change,
        seen_version=seen_version,
        fence=fence,
        claim_for=claim_for,
        lease_ttl_s=lease_ttl_s,
        cancel_wins=cancel_wins,
    )
    if leaving is not None:
        totals.take_out(db, conn, [leaving])
    if run.parent_id is not None and run.status.terminal:
        tell_parent(db, conn, run)
    if before is not None:
        # After the update, which holds the row lock: whatever `before` appends to the run's
        # events gets its ids after every other change of this run already committed
        # (PostgreSQL hands out ids at insert, not at commit), so readers "after id N" miss
        # nothing.
        before(conn)
    rows = [(run_id, kind, data) for kind, data in extra_events]
    if claimed:
        rows.append((run_id, "status", {"status": "queued"}))
        rows.append((run_id, "status", {"status": "running", "attempt": run.attempts}))
    elif status is not None:
        rows.append((run_id, "status", {"status": run.status.value}))
    if cancel_wins and run.status is RunStatus.CANCELLED:
        rows.append((run_id, "cancelled", {"while": status.value if status else ""}))
    events.append(db, conn, rows)
    _settled(db, conn, run)
    return run


def _locked_row(db: Database, conn: Connection, run_id: str) -> Any:
    """What the totals count of the run, its row locked (PostgreSQL)."""
    return conn.execute(totals.counted().where(runs.c.id == run_id).with_for_update()).first()


def _settled(db: Database, conn: Connection, run: Run) -> None:
    """What follows a change once its rows are written.

    A finished run's footprint is counted (nothing is added to it any more); a queued
    run's workers are told.
    """
    if run.status.terminal:
        footprint.count_in(db, conn, (run.id,))
    if run.status is RunStatus.QUEUED:
        db.notify_queued(conn, {run.workflow})


async def claim(
    db: Database,
    *,
    owner: str,
    workflows: Collection[str],
    limit: int,
    lease_ttl_s: float,
    versions: Collection[str] | None = None,
) -> list[Run]:
    """Claim up to ``limit`` queued runs of ``workflows``, oldest first, under a new lease epoch.

    With ``versions``, only runs started on one of those definition versions: a worker
    never executes a run on a graph other than the one it started on.
    """
    if limit <= 0 or not workflows or (versions is not None and not versions):
        return []

    def job(conn: Connection) -> list[Run]:
        claimed = runs_store.claim_rows_in(
            db,
            conn,
            owner=owner,
            workflows=workflows,
            limit=limit,
            lease_ttl_s=lease_ttl_s,
            versions=versions,
        )
        events.append(
            db,
            conn,
            [(r.id, "status", {"status": "running", "attempt": r.attempts}) for r in claimed],
        )
        return claimed

    return await db.write(job)


async def requeue_expired(db: Database) -> list[str]:
    """Give runs whose lease expired back to the queue (cancelled if cancel was requested)."""

    def job(conn: Connection) -> list[str]:
        rows = runs_store.expire_rows_in(db, conn)
        cancelled_ids = [r.id for r in rows if r.status is RunStatus.CANCELLED]
        requeued_rows = [r for r in rows if r.status is RunStatus.QUEUED]
        requeued = [r.id for r in requeued_rows]
        db.notify_queued(conn, {r.workflow for r in requeued_rows})
        events.append(
            db,
            conn,
            [(i, "status", {"status": "cancelled"}) for i in cancelled_ids]
            + [(i, "status", {"status": "queued", "reason": "lease_expired"}) for i in requeued],
        )
        children = sorted((r for r in rows if r.parent_id and r.status.terminal), key=_by_parent)
        for child in children:  # parents locked in id order, as batches and heartbeats do
            tell_parent(db, conn, child)
        # Totals last, as a finishing transition counts them: after any parent's row.
        footprint.count_in(db, conn, cancelled_ids)
        return requeued + cancelled_ids

    return await db.write(job)


def _by_parent(run: Run) -> bytes:
    return (run.parent_id or "").encode()


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
    run = signals.lock_run(db, conn, run_id)
    if run is None:
        raise errors.RunNotFound(run_id)
    if run.status.terminal:
        raise errors.TransitionConflict(run_id, "signal", run.status.value)
    waiting = run.status is RunStatus.WAITING
    wait = next((w for w in signals.signal_waits(run) if w.name == name and waiting), None)
    if wait is None:  # it would stay in the mailbox: is there room?
        queued = conn.execute(
            select(func.count())
            .select_from(signals_table)
            .where(signals_table.c.run_id == run_id, signals_table.c.consumed_at.is_(None))
        ).scalar_one()
        if queued >= max_queued:
            raise errors.SignalQueueFull(run_id, max_queued)
    if wait is not None and check is not None:
        check(wait, payload)
    row = (
        conn.execute(
            sql_insert(signals_table)
            .values(run_id=run_id, name=name, payload=payload, created_at=db.now())
            .returning(signals_table)
        )
        .mappings()
        .one()
    )
    if wait is None:
        queued_event = {"name": name, "signal_id": row["id"]}
        events.append(db, conn, [(run_id, "signal_queued", queued_event)])
        return SignalSent(signal=SignalRecord.from_row(row), run=run, delivered=False)
    consumed = signals.consume(db, conn, [(row["id"], wait.id)])
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
        send_in(
            db, conn, child.parent_id, signals.CHILD_SIGNAL + child.id, payload, max_queued=2**31
        )


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
    return transition_in(
        db,
        conn,
        run.id,
        action="signal",
        allowed=(RunStatus.WAITING,),
        change=runs_store.Change(status=RunStatus.QUEUED, resume=resume, waiting_for=None),
        seen_version=run.version,
        extra_events=[
            ("signal", {"name": row["name"], "signal_id": row["id"], "interrupt_id": iid})
            for iid, row in delivered.items()
        ],
        claim_for=claim_for,
        lease_ttl_s=lease_ttl_s,
    )
