"""In-process change notification: wakes whoever waits on a run when this process changes it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from graphrun.storage.records import Run, RunStatus

__all__ = ("IN_FLIGHT", "ChangeNotifier", "Listener", "wait_for_event")

#: Statuses in which a run is still on its way to its next stop.
IN_FLIGHT = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
MAX_IN_FLIGHT = 10_000  # runs remembered; the oldest are read from the database again


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
        self._in_flight: collections.OrderedDict[str, Run] = collections.OrderedDict()

    def in_flight(self, run_id: str) -> Run | None:
        """The run as this process last wrote it, if that left it queued or running.

        Only an in-flight answer is kept: a waiter may skip reading a run it would wait on
        anyway, but must read any other answer, which another process may have changed.
        """
        return self._in_flight.get(run_id)

    def notify(self, run_id: str, run: Run | None = None, *, progress_only: bool = False) -> None:
        """Wake the listeners of ``run_id`` (only progress listeners for a finished node)."""
        if run is not None:
            if run.status in IN_FLIGHT:
                self._in_flight[run_id] = run
                self._in_flight.move_to_end(run_id)
                while len(self._in_flight) > MAX_IN_FLIGHT:
                    self._in_flight.popitem(last=False)
            else:
                self._in_flight.pop(run_id, None)
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
    """Wait for ``event`` at most ``timeout`` seconds; return whether it was set.

    A cancellation always wins. Not ``asyncio.wait_for``: on Python 3.11 it returns the
    inner result when the waiter is cancelled after the event was set but before the waiter
    resumed (a few turns of the loop), and the cancellation is lost; a `DueLoop` nudged just
    as it was stopped then polled on and ``stop`` waited for it forever.
    """
    try:
        async with asyncio.timeout(timeout):
            return await event.wait()
    except TimeoutError:
        return event.is_set()
