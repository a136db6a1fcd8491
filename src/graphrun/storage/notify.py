"""Wake-ups across processes on PostgreSQL: ``NOTIFY`` when a run is queued, ``LISTEN`` for it.

A transaction that leaves a run queued (a start, a resume, a signal, a due timer, a retry, an
expired lease) notifies the channel with the run's workflow; PostgreSQL delivers it when the
transaction commits, never before. Each worker process listens on one connection of its own
and looks for work at once when a workflow it serves gets a queued run; polling stays as the
fallback (a lost connection is reconnected with backoff). SQLite has one process per
database file in practice, and an in-process wake-up already: there, nothing is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("CHANNEL", "Listener", "queued")

logger = logging.getLogger("graphrun.notify")

#: The channel queued runs are announced on; the payload is the run's workflow.
CHANNEL = "graphrun_queued"
MAX_BACKOFF_S = 5.0


def queued(db: Database, conn: Connection, workflows: set[str]) -> None:
    """Inside a write transaction: announce queued runs of ``workflows`` when it commits."""
    if db.dialect != "postgresql" or not workflows:
        return
    statement = text("SELECT pg_notify(:channel, :workflow)")
    for workflow in sorted(workflows):
        conn.execute(statement, {"channel": CHANNEL, "workflow": workflow})


class Listener:
    """Listens for queued runs on PostgreSQL and calls ``on_queued(workflow)`` for each."""

    def __init__(
        self, db: Database, on_queued: Callable[[str], None], on_connected: Callable[[], None]
    ) -> None:
        #: Its connection has the settings of the database's others (deadlines, keepalives).
        self.db = db
        self.on_queued = on_queued
        #: Called on every (re)connection: runs queued while nobody listened are looked for.
        self.on_connected = on_connected
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        """Start listening (until `stop`)."""
        self._task = asyncio.create_task(self._listen(), name="graphrun-listen")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        import psycopg

        backoff = 0.0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.db.libpq_dsn(), autocommit=True, **self.db.pg_connect_args()
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self.on_connected()
                    backoff = 0.0
                    async for message in conn.notifies():
                        self.on_queued(message.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener outlives any failure; polling covers it
                self.connected.clear()
                backoff = min(MAX_BACKOFF_S, backoff * 2 or 0.1)
                logger.warning(
                    "listening for queued runs failed (polling meanwhile): %s",
                    exc,
                    extra={"action": "listen_failed"},
                )
                await asyncio.sleep(backoff)
