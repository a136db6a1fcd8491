"""Schedules: start a workflow with a fixed input at cron times or fixed intervals.

Firing is a compare-and-set on ``next_fire_at`` in the same transaction as the run's
insert, and the run's idempotency key is ``schedule:<id>:<due time>``: however many
engines share the database, a due time starts one run. The next due time is computed
from *now*, so fires missed while everything was down collapse into one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update

from graphrun import errors, validation

from . import lifecycle
from . import runs as runs_store
from .records import Run, ScheduleRecord
from .schema import schedules, workflows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = (
    "Fired",
    "NewSchedule",
    "create",
    "delete_one",
    "fire_due",
    "get",
    "list_all",
    "next_due",
)


@dataclass(frozen=True, kw_only=True)
class NewSchedule:
    """What `create` stores; the engine has validated every field."""

    id: str
    workflow: str
    cron: str | None
    interval_s: float | None
    timezone: str
    input: Any
    first_fire_at: float


@dataclass(frozen=True, kw_only=True)
class Fired:
    """One due time a schedule fired: the run it started (None if the workflow is unknown)."""

    schedule_id: str
    due_at: float
    run: Run | None
    created: bool


async def create(db: Database, new: NewSchedule) -> ScheduleRecord:
    """Store a schedule.

    Raises:
        ScheduleExists: The id is taken.
    """

    def job(conn: Connection) -> ScheduleRecord:
        row = (
            conn.execute(
                db.insert(schedules)
                .values(
                    id=new.id,
                    workflow=new.workflow,
                    cron=new.cron,
                    interval_s=new.interval_s,
                    timezone=new.timezone,
                    input=new.input,
                    next_fire_at=new.first_fire_at,
                    created_at=db.now(),
                )
                .on_conflict_do_nothing(index_elements=[schedules.c.id])
                .returning(schedules)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise errors.ScheduleExists(new.id)
        return ScheduleRecord.from_row(row)

    return await db.write(job)


async def list_all(db: Database) -> list[ScheduleRecord]:
    """Every schedule, by id."""
    rows = await db.rows(select(schedules).order_by(schedules.c.id))
    return [ScheduleRecord.from_row(r) for r in rows]


async def get(db: Database, schedule_id: str) -> ScheduleRecord | None:
    """The schedule with this id, or None."""
    row = await db.row(select(schedules).where(schedules.c.id == schedule_id))
    return None if row is None else ScheduleRecord.from_row(row)


async def delete_one(db: Database, schedule_id: str) -> None:
    """Remove a schedule; runs it started are kept.

    Raises:
        ScheduleNotFound: No such schedule.
    """

    def job(conn: Connection) -> int:
        return conn.execute(delete(schedules).where(schedules.c.id == schedule_id)).rowcount

    if await db.write(job) == 0:
        raise errors.ScheduleNotFound(schedule_id)


async def next_due(db: Database) -> float | None:
    """Seconds until the earliest schedule is due (<= 0: due now), by the database clock."""
    statement = db.statement(
        "schedules.next_due", lambda: select(func.min(schedules.c.next_fire_at) - db.now())
    )
    value = await db.read_point(lambda conn: conn.execute(statement).scalar())
    return None if value is None else float(value)


async def fire_due(
    db: Database,
    *,
    next_after: Callable[[ScheduleRecord, float], float],
    new_id: Callable[[], str],
    limit: int = 100,
) -> list[Fired]:
    """Fire every schedule due now: advance it and start its run, atomically, once.

    Args:
        db: The database.
        next_after: The schedule's first due time after a moment (its cron or interval).
        new_id: Makes the id of a run to start.
        limit: Schedules fired per call at most.
    """

    def job(conn: Connection) -> list[Fired]:
        now = float(conn.execute(select(db.now())).scalar_one())
        query = (
            select(schedules)
            .where(schedules.c.next_fire_at <= now)
            .order_by(schedules.c.next_fire_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        fired = []
        for row in conn.execute(query).mappings().all():
            schedule = ScheduleRecord.from_row(row)
            due = float(row["next_fire_at"])
            advanced = conn.execute(
                update(schedules)
                .where(schedules.c.id == schedule.id, schedules.c.next_fire_at == due)
                .values(next_fire_at=next_after(schedule, now), last_fired_at=now)
            ).rowcount
            if advanced != 1:
                continue  # another engine fired this due time
            run, created = _start(db, conn, schedule, due, new_id())
            if run is not None:
                conn.execute(
                    update(schedules)
                    .where(schedules.c.id == schedule.id)
                    .values(last_run_id=run.id)
                )
            fired.append(Fired(schedule_id=schedule.id, due_at=due, run=run, created=created))
        return fired

    return await db.write(job)


def _start(
    db: Database, conn: Connection, schedule: ScheduleRecord, due: float, run_id: str
) -> tuple[Run | None, bool]:
    version = conn.execute(
        select(workflows.c.version)
        .where(workflows.c.name == schedule.workflow)
        .order_by(workflows.c.published_at.desc())
        .limit(1)
    ).scalar()
    if version is None:
        return None, False  # no worker ever published it: nothing could run it
    return lifecycle.insert_in(
        db,
        conn,
        runs_store.NewRun(
            id=run_id,
            workflow=schedule.workflow,
            definition_version=version,
            input=schedule.input,
            input_hash=validation.canonical_hash(schedule.input),
            idempotency_key=f"schedule:{schedule.id}:{due!r}",
        ),
    )
