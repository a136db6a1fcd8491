"""Wake-ups across processes on PostgreSQL: ``NOTIFY`` when a run is queued, ``LISTEN`` for it.

A transaction that leaves a run queued (a start, a resume, a signal, a due timer, a retry, an
expired lease) notifies the channel with the run's workflow; PostgreSQL delivers it when the
transaction commits, never before. Each worker process listens on one connection of its own
and looks for work at once when a workflow it serves gets a queued run; polling stays as the
fallback (a lost connection is reconnected with backoff, by whoever runs the listener). SQLite has one process per
database file in practice, and an in-process wake-up already: there, nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from typing_extensions import override

from graphrun.backoff import Backoff
from graphrun.storage.database import Listener

__all__ = ("CHANNEL", "QueuedRunListener")

logger = logging.getLogger("graphrun.notify")

#: The channel queued runs are announced on; the payload is the run's workflow.
CHANNEL = "graphrun_queued"
FIRST_RETRY_S = 0.1  # seconds before reconnecting the first time
MAX_RETRY_S = 5.0  # seconds between reconnections at most


class QueuedRunListener(Listener):
    """Listens for queued runs on PostgreSQL and calls ``on_queued(workflow)`` for each."""

    def __init__(
        self,
        dsn: str,
        connect_args: dict[str, Any],
        on_queued: Callable[[str], None],
        on_connected: Callable[[], None],
    ) -> None:
        self._dsn = dsn
        #: The settings of the database's other connections (deadlines, keepalives).
        self._connect_args = connect_args
        self.on_queued = on_queued
        #: Called on every (re)connection: runs queued while nobody listened are looked for.
        self.on_connected = on_connected
        #: Set while connected and listening.
        self.connected = asyncio.Event()

    @override
    async def run(self) -> None:
        backoff = Backoff(FIRST_RETRY_S, MAX_RETRY_S)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, **self._connect_args
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self.on_connected()
                    backoff.reset()
                    async for message in conn.notifies():
                        self.on_queued(message.payload)
            except psycopg.Error as exc:  # polling covers the gap until it is back
                self.connected.clear()
                logger.warning(
                    "listening for queued runs failed (polling meanwhile): %s",
                    exc,
                    extra={"action": "listen_failed"},
                )
                await asyncio.sleep(backoff.next_delay())
            finally:
                self.connected.clear()
