"""A loop that acts when something stored in the database falls due: timers, schedules.

It sleeps until the earliest due time (one index lookup), or until this process stores an
earlier one, and never longer than the poll interval, so due times other processes store
are seen too. Nothing scans every row; a sleeping run costs a row, not a task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from graphrun import errors
from graphrun.config import Settings

from .notifier import wait_for_event

__all__ = ("DueLoop",)

logger = logging.getLogger("graphrun.due")

MAX_BACKOFF_S = 5.0  # seconds between retries while the database fails


class DueLoop:
    """Calls ``fire`` whenever ``next_due`` says something is due; one per kind per engine.

    Args:
        name: For the task name and logs (``timers``, ``schedules``).
        settings: The engine's settings (the poll interval caps each sleep).
        next_due: Seconds until the earliest due time in the database, by the database's
            clock (<= 0: something is due now), or None.
        fire: Acts on everything due now; returns how many it handled.
    """

    def __init__(
        self,
        name: str,
        settings: Settings,
        next_due: Callable[[], Awaitable[float | None]],
        fire: Callable[[], Awaitable[int]],
    ) -> None:
        self.name = name
        self.settings = settings
        self._next_due = next_due
        self._fire = fire
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (it runs until `stop`)."""
        self._task = asyncio.create_task(self._loop(), name=f"graphrun-{self.name}")

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def nudge(self) -> None:
        """This process stored something that falls due: look for the earliest time again."""
        self._changed.set()

    async def _loop(self) -> None:
        backoff = 0.0
        while True:
            self._changed.clear()
            try:
                delay = await self._next_due()
                if delay is not None and delay <= 0:
                    if not await self._fire():  # another process took it: look again soon
                        await asyncio.sleep(self.settings.poll_interval_s / 10)
                    backoff = 0.0
                    continue
                backoff = 0.0
            except Exception as exc:  # the loop outlives a failing database
                backoff = min(MAX_BACKOFF_S, backoff * 2 or self.settings.poll_interval_s)
                logger.warning(
                    "%s: %s",
                    self.name,
                    exc,
                    exc_info=not isinstance(exc, errors.StorageError),
                    extra={"action": f"{self.name}_failed"},
                )
                await asyncio.sleep(backoff)
                continue
            pause = self.settings.poll_interval_s
            if delay is not None:
                pause = min(pause, delay)
            await wait_for_event(self._changed, pause)
