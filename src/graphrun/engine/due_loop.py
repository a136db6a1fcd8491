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
from graphrun.backoff import Backoff
from graphrun.config import Settings

from .notifier import wait_for_event
from .runtime import Runtime

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
        runtime: Runs the loop as its task ``name``.
    """

    def __init__(
        self,
        name: str,
        settings: Settings,
        next_due: Callable[[], Awaitable[float | None]],
        fire: Callable[[], Awaitable[int]],
        runtime: Runtime,
    ) -> None:
        self.name = name
        self.settings = settings
        self._next_due = next_due
        self._fire = fire
        self._changed = asyncio.Event()
        self._runtime = runtime

    def start(self) -> None:
        """Start the loop (it runs until `stop`)."""
        self._runtime.start(self.name, self._loop)

    async def stop(self) -> None:
        """Stop the loop."""
        await self._runtime.stop(self.name)

    def nudge(self) -> None:
        """This process stored something that falls due: look for the earliest time again."""
        self._changed.set()

    async def _loop(self) -> None:
        backoff = Backoff(self.settings.poll_interval_s, MAX_BACKOFF_S)
        while True:
            self._changed.clear()
            try:
                delay = await self._next_due()
                if delay is not None and delay <= 0:
                    if not await self._fire():  # another process took it: look again soon
                        await asyncio.sleep(self.settings.poll_interval_s / 10)
                    backoff.reset()
                    continue
                backoff.reset()
            except Exception as exc:  # the loop outlives a failing database
                logger.warning(
                    "%s: %s",
                    self.name,
                    exc,
                    exc_info=not isinstance(exc, errors.StorageError),
                    extra={"action": f"{self.name}_failed"},
                )
                await asyncio.sleep(backoff.next_delay())
                continue
            pause = self.settings.poll_interval_s
            if delay is not None:
                pause = min(pause, delay)
            await wait_for_event(self._changed, pause)
