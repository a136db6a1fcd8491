"""The timer loop: wakes sleeping runs when they are due, driven by the earliest due time.

It sleeps until the earliest timer in the database (an index lookup), or until this
process starts an earlier one, and never longer than the poll interval, so timers other
processes set are seen too. A run that sleeps costs a row, not a task or a worker slot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from graphrun import errors
from graphrun.storage import timers as timers_store

from .notifier import wait_for_event

if TYPE_CHECKING:
    from collections.abc import Callable

    from graphrun.config import Settings
    from graphrun.storage import Database

    from .notifier import ChangeNotifier

__all__ = ("TimerLoop",)

logger = logging.getLogger("graphrun.timers")

MAX_BACKOFF_S = 5.0  # seconds between retries while the database fails


class TimerLoop:
    """Wakes due runs; one per engine that runs a worker."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        notifier: ChangeNotifier,
        on_woken: Callable[[], None],
    ) -> None:
        self.db = db
        self.settings = settings
        self.notifier = notifier
        self.on_woken = on_woken
        self._changed = asyncio.Event()
        self._earliest: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (it runs until `stop`)."""
        self._task = asyncio.create_task(self._loop(), name="graphrun-timers")

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def timer_set(self, due: float) -> None:
        """A run of this process now sleeps until ``due``: wake up earlier if needed."""
        if self._earliest is None or due < self._earliest:
            self._earliest = due
            self._changed.set()

    async def _loop(self) -> None:
        backoff = 0.0
        while True:
            self._changed.clear()
            try:
                due = await timers_store.next_due(self.db)
                if due is not None and due <= time.time():
                    woken = await timers_store.wake_due(self.db)
                    for run in woken:
                        self.notifier.notify(run.id, run)
                    if woken:
                        self.on_woken()
                    else:
                        await asyncio.sleep(0.005)  # the database clock is a hair behind ours
                    self._earliest = None
                    backoff = 0.0
                    continue
                backoff = 0.0
            except Exception as exc:  # the loop outlives a failing database
                backoff = min(MAX_BACKOFF_S, backoff * 2 or self.settings.poll_interval_s)
                logger.warning(
                    "timer wake-up failed: %s",
                    exc,
                    exc_info=not isinstance(exc, errors.StorageError),
                    extra={"action": "timers_failed"},
                )
                await asyncio.sleep(backoff)
                continue
            self._earliest = due
            pause = self.settings.poll_interval_s
            if due is not None:
                pause = min(pause, max(0.0, due - time.time()))
            await wait_for_event(self._changed, pause)
