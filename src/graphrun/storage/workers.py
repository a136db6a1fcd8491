"""The workers aggregate: which processes are alive and what they can run."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import delete, update

from .schema import workers

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("register", "touch", "unregister")


async def register(
    db: Database, *, worker_id: str, hostname: str, pid: int, workflows: Collection[str]
) -> None:
    """Record this worker (or refresh its row) with the workflows it serves."""

    def job(conn: Connection) -> None:
        now = db.now()
        stmt = db.insert(workers).values(
            id=worker_id,
            hostname=hostname,
            pid=pid,
            workflows=sorted(workflows),
            started_at=now,
            heartbeat_at=now,
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[workers.c.id],
                set_={"workflows": stmt.excluded.workflows, "heartbeat_at": now},
            )
        )

    await db.write(job)


async def touch(db: Database, worker_id: str) -> None:
    """Mark the worker alive (its heartbeat)."""

    def job(conn: Connection) -> None:
        conn.execute(update(workers).where(workers.c.id == worker_id).values(heartbeat_at=db.now()))

    await db.write(job)


async def unregister(db: Database, worker_id: str) -> None:
    """Remove the worker's row on clean shutdown."""

    def job(conn: Connection) -> None:
        conn.execute(delete(workers).where(workers.c.id == worker_id))

    await db.write(job)
