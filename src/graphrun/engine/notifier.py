"""In-process change notification: wakes whoever waits on a run when this process changes it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ("ChangeNotifier",)


class ChangeNotifier:
    """Per-run wake-ups for `Engine.wait` and `Engine.watch`.

    Only changes made in this process are announced; waiters also poll, which covers changes
    made by other processes. Listen first, then read the run, then wait: a change that lands
    between the read and the wait still wakes the waiter.
    """

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    def notify(self, run_id: str) -> None:
        """Wake every listener of ``run_id``."""
        for event in self._events.get(run_id, ()):
            event.set()

    @contextlib.contextmanager
    def listen(self, run_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``run_id`` changes in this process, for the block's duration."""
        event = asyncio.Event()
        self._events.setdefault(run_id, set()).add(event)
        try:
            yield event
        finally:
            listeners = self._events.get(run_id)
            if listeners is not None:
                listeners.discard(event)
                if not listeners:
                    del self._events[run_id]


async def wait_for_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; return whether it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True
