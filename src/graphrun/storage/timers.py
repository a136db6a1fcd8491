"""Durable timers: waiting runs with a due time (``sleep``, a signal wait's timeout).

A timer is the run's ``wake_at`` column, set in the transition that makes it wait and
cleared by any transition out of ``waiting``. Both queries here are range reads of the
``(status, wake_at)`` index: the earliest due time, and the runs due now. Nothing scans
every run, however many sleep.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select

from graphrun import waits

from . import lifecycle
from . import runs as runs_store
from .records import Run, RunStatus, WaitingOn
from .schema import runs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("next_due", "wake_due")

ROUNDING_S = 1e-5  # a wait's wake_at, as a datetime, may be this much later than the column


async def next_due(db: Database) -> float | None:
    """Seconds until the earliest timer of a waiting run is due (<= 0: due now), or None.

    Measured by the database clock, the one `wake_due` compares with.
    """
    statement = db.statement(
        "timers.next_due",
        lambda: select(func.min(runs.c.wake_at) - db.now()).where(
            runs.c.status == RunStatus.WAITING.value, runs.c.wake_at.is_not(None)
        ),
    )
    value = await db.read_point(lambda conn: conn.execute(statement).scalar())
    return None if value is None else float(value)


def _answers(pending: tuple[WaitingOn, ...], now: float) -> dict[str, Any]:
    """Resume values for the waits whose time has come."""
    answers: dict[str, Any] = {}
    for wait in pending:
        if wait.wake_at is not None and wait.wake_at <= datetime.fromtimestamp(now, UTC):
            answers[wait.id] = waits.due_answer(wait)
    return answers


async def wake_due(db: Database, *, limit: int = 500) -> list[Run]:
    """Queue the waiting runs whose timer is due (oldest due first, up to ``limit``).

    Each is one compare-and-set in one transaction: a run that a signal or a cancel moved
    meanwhile is not touched (on PostgreSQL, rows another process is waking are skipped).
    """

    def job(conn: Connection) -> list[Run]:
        now = float(conn.execute(select(db.now())).scalar_one())
        query = (
            select(runs)
            .where(runs.c.status == RunStatus.WAITING.value, runs.c.wake_at <= bindparam("now"))
            .order_by(runs.c.wake_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        woken = []
        for row in conn.execute(query, {"now": now}).mappings().all():
            run = Run.from_row(row)
            # The row's wake_at is the earliest of the waits' (stored as datetimes, rounded
            # to the microsecond): that one, and any other due by now, is answered.
            answers = _answers(run.waiting_for, max(now, row["wake_at"]) + ROUNDING_S)
            woken.append(
                lifecycle.transition_in(
                    db,
                    conn,
                    run.id,
                    action="wake",
                    allowed=(RunStatus.WAITING,),
                    change=runs_store.Change(
                        status=RunStatus.QUEUED,
                        resume={**(run.resume or {}), **answers},
                        waiting_for=None,
                    ),
                    seen_version=run.version,
                    extra_events=[("timer", {"interrupt_ids": sorted(answers)})],
                )
            )
        return woken

    return await db.write(job)
