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
        self._status: dict[str, set[asyncio.Event]] = {}
        self._progress: dict[str, set[asyncio.Event]] = {}

    def notify(self, run_id: str, *, progress_only: bool = False) -> None:
        """Wake the listeners of ``run_id``: all of them, or only progress listeners."""
        for event in self._progress.get(run_id, ()):
            event.set()
        if not progress_only:
            for event in self._status.get(run_id, ()):
                event.set()

    @contextlib.contextmanager
    def listen(self, run_id: str, *, progress: bool = False) -> Iterator[asyncio.Event]:
        """An event set when ``run_id`` changes here, for the block's duration.

        By default only status changes set it; with ``progress`` finished nodes do too.
        """
        listeners = self._progress if progress else self._status
        event = asyncio.Event()
        listeners.setdefault(run_id, set()).add(event)
        try:
            yield event
        finally:
            held = listeners.get(run_id)
            if held is not None:
                held.discard(event)
                if not held:
                    del listeners[run_id]


async def wait_for_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; return whether it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True
