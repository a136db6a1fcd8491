"""The engine's background tasks, in one owner that watches every one of them.

Each long-lived task of an engine (the claim loop with its stop-request poll, heartbeats,
the timer and schedule loops, the purge, the PostgreSQL listener, the app host) is started
here under a name. A task that raises out of its body, whatever the exception, is logged
with the action ``<name>_crashed`` (and its traceback) and started again after a backoff
with jitter; it is never gone in silence while the engine runs. A body that returns has
finished its work (the claim loop returns once its worker stops) and is not started again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from graphrun.backoff import Backoff

__all__ = ("Runtime",)

logger = logging.getLogger("graphrun.runtime")

FIRST_RESTART_S = 0.1  # seconds before the first restart of a crashed task
MAX_RESTART_S = 5.0  # seconds between restarts at most


@dataclass(eq=False)
class _Supervised:
    name: str
    body: Callable[[], Awaitable[None]]
    backoff: Backoff
    task: asyncio.Task[None] | None = None
    crashes: int = 0
    #: Set on every start of the body (tests wait for a restart on it).
    started: asyncio.Event = field(default_factory=asyncio.Event)


class Runtime:
    """Starts, watches, restarts and stops an engine's background tasks; one per engine."""

    def __init__(self) -> None:
        self._tasks: dict[str, _Supervised] = {}

    def start(
        self,
        name: str,
        body: Callable[[], Awaitable[None]],
        *,
        first_restart_s: float = FIRST_RESTART_S,
        max_restart_s: float = MAX_RESTART_S,
    ) -> None:
        """Run ``body()`` as the task ``name`` until it returns or `stop` ends it.

        Raises:
            ValueError: A task of this name runs already.
        """
        if name in self._tasks:
            raise ValueError(f"background task {name!r} runs already")
        supervised = _Supervised(name, body, Backoff(first_restart_s, max_restart_s))
        self._tasks[name] = supervised
        supervised.task = asyncio.create_task(self._supervise(supervised), name=f"graphrun-{name}")

    def names(self) -> list[str]:
        """The tasks running (or waiting to restart), in the order they were started."""
        return [n for n, s in self._tasks.items() if s.task is not None and not s.task.done()]

    def crashes(self, name: str) -> int:
        """How many times the task ``name`` raised out of its body."""
        return self._tasks[name].crashes

    def started(self, name: str) -> asyncio.Event:
        """An event set whenever the task ``name`` (re)starts its body; clear it to wait."""
        return self._tasks[name].started

    async def join(self, name: str) -> None:
        """Wait for the task ``name`` to return on its own (its owner asked it to end)."""
        supervised = self._tasks.get(name)
        if supervised is not None and supervised.task is not None:
            await asyncio.shield(supervised.task)
            del self._tasks[name]

    async def stop(self, *names: str) -> None:
        """Cancel the named tasks (all, newest first, without names) and wait for each."""
        for name in names or list(reversed(self._tasks)):
            supervised = self._tasks.pop(name, None)
            if supervised is None or supervised.task is None:
                continue
            supervised.task.cancel()
            await asyncio.gather(supervised.task, return_exceptions=True)

    async def _supervise(self, supervised: _Supervised) -> None:
        while True:
            supervised.started.set()
            began = time.monotonic()
            try:
                await supervised.body()
                return
            except Exception as exc:
                supervised.crashes += 1
                if time.monotonic() - began > supervised.backoff.max_s:
                    supervised.backoff.reset()  # it had been running well: start small again
                delay = supervised.backoff.next_delay()
                logger.error(
                    "background task %s crashed (restarting in %.2f s): %r",
                    supervised.name,
                    delay,
                    exc,
                    exc_info=exc,
                    extra={"action": f"{supervised.name}_crashed", "task": supervised.name},
                )
            await asyncio.sleep(delay)
