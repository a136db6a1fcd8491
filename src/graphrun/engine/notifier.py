"""In-process change notification: wakes whoever waits on a run when this process changes it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from graphrun.storage.records import Run

__all__ = ("ChangeNotifier", "Listener", "wait_for_event")


@dataclass(eq=False)
class Listener:
    """One waiter's view of a run: an event, and the newest run this process wrote."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: The run as of this process's latest transition (saves a read), if any.
    latest: Run | None = None

    def take(self) -> Run | None:
        """The newest run seen since the last call, clearing the event."""
        self.changed.clear()
        run, self.latest = self.latest, None
        return run


class ChangeNotifier:
    """Per-run wake-ups for `Engine.wait` and `Engine.watch`.

    Only changes made in this process are announced; waiters also poll, which covers changes
    made by other processes. Listen first, then read the run, then wait: a change that lands
    between the read and the wait still wakes the waiter.
    """

    def __init__(self) -> None:
        self._status: dict[str, set[Listener]] = {}
        self._progress: dict[str, set[Listener]] = {}

    def notify(self, run_id: str, run: Run | None = None, *, progress_only: bool = False) -> None:
        """Wake the listeners of ``run_id`` (only progress listeners for a finished node)."""
        groups = [self._progress.get(run_id, ())]
        if not progress_only:
            groups.append(self._status.get(run_id, ()))
        for group in groups:
            for listener in group:
                if run is not None and (
                    listener.latest is None or run.version >= listener.latest.version
                ):
                    listener.latest = run
                listener.changed.set()

    @contextlib.contextmanager
    def listen(self, run_id: str, *, progress: bool = False) -> Iterator[Listener]:
        """Listen to ``run_id`` for the block's duration.

        By default only status changes wake the listener; with ``progress`` finished nodes do too.
        """
        listeners = self._progress if progress else self._status
        listener = Listener()
        listeners.setdefault(run_id, set()).add(listener)
        try:
            yield listener
        finally:
            held = listeners.get(run_id)
            if held is not None:
                held.discard(listener)
                if not held:
                    del listeners[run_id]


async def wait_for_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; return whether it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True
