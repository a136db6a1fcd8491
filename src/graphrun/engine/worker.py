"""The in-process worker: claims queued runs under leases, heartbeats, recovers expired ones.

Its two loops (claiming, with the poll for stop requests; heartbeats) run as tasks of the
engine's `Runtime`: a failure inside a loop is logged and retried with backoff, so a database
that is briefly unavailable never stops the worker, and anything that escapes a loop is
logged and the loop started again. Recovery needs no operator:
on start, and on every heartbeat, runs whose lease expired (their worker died) go back to
the queue and continue from their last checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from typing import TYPE_CHECKING

from graphrun import errors
from graphrun.backoff import Backoff
from graphrun.storage import lifecycle
from graphrun.storage import runs as runs_store
from graphrun.storage import workers as workers_store

from .executor import Executor, Handle, StopReason
from .notifier import wait_for_event
from .runtime import Runtime

if TYPE_CHECKING:
    from graphrun.config import Settings
    from graphrun.storage import Database
    from graphrun.storage.records import Run

    from .graphs import BoundGraph

__all__ = ("Worker",)

logger = logging.getLogger("graphrun.worker")

CLAIM_BATCH = 50  # runs per claim statement
MAX_BACKOFF_S = 5.0  # seconds between claims at most while the database fails
#: Seconds between looks for cancels and pauses asked through other processes, at most.
STOP_POLL_S = 0.5


class Worker:
    """Claims and executes runs of the workflows this process loaded."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        executor: Executor,
        graphs: dict[str, BoundGraph],
        versions: dict[str, str],
        runtime: Runtime,
    ) -> None:
        self.db = db
        #: Runs this worker's loops (``claim``, ``heartbeat``).
        self.runtime = runtime
        self.settings = settings
        self.executor = executor
        self.graphs = graphs
        #: Workflow name to the definition version this worker executes.
        self.versions = versions
        self._active: dict[str, Handle] = {}
        self._reserved = 0
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._force = asyncio.Event()
        self._unreserved = asyncio.Event()
        self._unreserved.set()

    @property
    def active_runs(self) -> list[str]:
        """Ids of the runs executing in this process now."""
        return list(self._active)

    def task_of(self, run_id: str) -> asyncio.Task[None] | None:
        """The task executing ``run_id`` here, if any (for tests and graceful shutdowns)."""
        handle = self._active.get(run_id)
        return None if handle is None else handle.task

    async def start(self) -> None:
        """Register, recover expired runs, and start claiming."""
        await workers_store.register(
            self.db,
            worker_id=self.settings.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            workflows=self.graphs,
        )
        await lifecycle.requeue_expired(self.db)
        self.runtime.start("claim", self._claim_loop)
        self.runtime.start("heartbeat", self._heartbeat_loop)

    def serves(self, workflow: str, version: str | None = None) -> bool:
        """Whether this worker executes runs of ``workflow`` (started on ``version``)."""
        if version is not None and self.versions.get(workflow) != version:
            return False
        return workflow in self.graphs and not self._stopping

    def reserve(self) -> bool:
        """Hold a slot for a run about to be started here; False when full."""
        if self._stopping or len(self._active) + self._reserved >= self.settings.concurrency:
            return False
        self._reserved += 1
        self._unreserved.clear()
        return True

    def adopt(self, run: Run | None) -> None:
        """Use a reserved slot: execute ``run`` (claimed at start), or just free the slot.

        `stop` waits for reserved slots, so a run claimed while stopping is still executed
        and then released like the others.
        """
        self._reserved -= 1
        if run is not None:
            self._spawn(run)
        if self._reserved == 0:
            self._unreserved.set()

    def wake(self) -> None:
        """Look for queued runs now instead of at the next poll."""
        self._wakeup.set()

    def stop_run(self, run_id: str, reason: StopReason) -> bool:
        """Cancel a run executing here; ``reason`` says what the executor should record."""
        handle = self._active.get(run_id)
        if handle is None:
            return False
        _stop(handle, reason)
        return True

    def pause_run(self, run_id: str) -> bool:
        """Ask a run executing here to stop at its next step boundary (it becomes paused)."""
        handle = self._active.get(run_id)
        if handle is None:
            return False
        handle.request_pause()
        return True

    def force_stop(self) -> None:
        """End a graceful stop's grace period now: release every unfinished run."""
        self._force.set()

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop claiming; let runs finish for ``grace_s``, then release the rest to the queue.

        Heartbeats go on until every run has finished or been released, so a run still
        draining is never taken over by another worker.
        """
        self._stopping = True
        self.wake()
        try:
            # The claim loop ends after its current claim; claimed runs are spawned.
            await self.runtime.join("claim")
            await self._unreserved.wait()
            if self._active and grace_s > 0 and not self._force.is_set():
                waiters = [asyncio.ensure_future(e.wait()) for e in (self._idle, self._force)]
                await asyncio.wait(waiters, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
            for run_id in list(self._active):
                self.stop_run(run_id, StopReason.SHUTDOWN)
            pending = [h.task for h in self._active.values() if h.task is not None]
            if pending:
                # asyncio.wait, not gather: a cancelled stop must not cancel these again.
                await asyncio.wait(pending)
            await self.executor.drain()
        finally:
            await self.runtime.stop("heartbeat")
        with contextlib.suppress(errors.StorageError):
            await workers_store.unregister(self.db, self.settings.worker_id)

    # -- claiming ------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        backoff = Backoff(self.settings.poll_interval_s, MAX_BACKOFF_S)
        while not self._stopping:
            self._wakeup.clear()
            free = self.settings.concurrency - len(self._active) - self._reserved
            want = min(free, CLAIM_BATCH)
            claimed: list[Run] = []
            if want > 0:
                try:
                    claimed = await lifecycle.claim(
                        self.db,
                        owner=self.settings.worker_id,
                        workflows=list(self.graphs),
                        limit=want,
                        lease_ttl_s=self.settings.lease_ttl_s,
                        versions=list(self.versions.values()),
                    )
                    backoff.reset()
                except Exception as exc:  # the worker outlives any one failed claim
                    logger.warning(
                        "claim failed: %s",
                        exc,
                        exc_info=not isinstance(exc, errors.StorageError),
                        extra={"action": "claim_failed"},
                    )
                    await asyncio.sleep(backoff.next_delay())
                    continue
                for run in claimed:
                    self._spawn(run)
            await self._take_stop_requests()
            if want > 0 and len(claimed) == want:
                continue  # there may be more
            pause = self.settings.poll_interval_s
            if self._active:  # look for stop requests at least this often
                pause = min(pause, STOP_POLL_S)
            await wait_for_event(self._wakeup, pause)

    async def _take_stop_requests(self) -> None:
        """Act on cancels and pauses asked through other processes (this one acts at once)."""
        if not self._active:
            return
        try:
            requests = await runs_store.stop_requests(self.db, owner=self.settings.worker_id)
        except errors.StorageError:
            return  # the heartbeat reads them too
        except Exception as exc:  # a bug, not an outage: say so, and go on claiming
            logger.warning(
                "looking for stop requests failed: %r",
                exc,
                exc_info=exc,
                extra={"action": "stop_poll_failed"},
            )
            return
        for request in requests:
            handle = self._active.get(request.run_id)
            if handle is not None and handle.run.lease_epoch == request.epoch:
                _obey(handle, request)

    def _spawn(self, run: Run) -> None:
        # Claimed again (its lease had expired): the old execution must write nothing more.
        self.stop_run(run.id, StopReason.LEASE_LOST)
        handle = Handle(run=run)
        self._active[run.id] = handle
        self._idle.clear()
        handle.task = asyncio.create_task(
            self.executor.execute(handle, self.graphs[run.workflow]), name=f"graphrun-run-{run.id}"
        )
        handle.task.add_done_callback(functools.partial(self._done, handle))

    def _done(self, handle: Handle, task: asyncio.Task[None]) -> None:
        run_id = handle.run.id
        was_full = len(self._active) + self._reserved >= self.settings.concurrency
        if self._active.get(run_id) is handle:
            del self._active[run_id]
        if not self._active:
            self._idle.set()
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error(
                "run %s crashed the executor",
                run_id,
                exc_info=exc,
                extra={"action": "executor_crash"},
            )
        if was_full:
            self.wake()  # queued runs may have waited for this slot

    # -- leases --------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        # Runs until `stop` cancels it, after the last run has finished or been released.
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            try:
                await self._heartbeat()
            except Exception as exc:  # a missed heartbeat is retried at the next one
                logger.warning(
                    "heartbeat failed: %s",
                    exc,
                    exc_info=not isinstance(exc, errors.StorageError),
                    extra={"action": "heartbeat_failed"},
                )

    async def _heartbeat(self) -> None:
        await workers_store.touch(self.db, self.settings.worker_id)
        handles = dict(self._active)
        held = {
            lease.run_id: lease
            for lease in await runs_store.heartbeat(
                self.db,
                owner=self.settings.worker_id,
                run_ids=list(handles),
                lease_ttl_s=self.settings.lease_ttl_s,
            )
        }
        for run_id, handle in handles.items():
            lease = held.get(run_id)
            if lease is None or lease.epoch != handle.run.lease_epoch:
                # Finished meanwhile, or taken over: either way nothing more may be written.
                _stop(handle, StopReason.LEASE_LOST)
            else:
                _obey(handle, lease)
        if await lifecycle.requeue_expired(self.db):
            self.wake()


def _obey(handle: Handle, lease: runs_store.HeldLease) -> None:
    """Act on a cancel or pause asked of a run this worker executes."""
    if lease.cancel_requested:
        _stop(handle, StopReason.CANCEL)
    elif lease.pause_requested:
        handle.request_pause()


def _stop(handle: Handle, reason: StopReason) -> None:
    """Cancel one execution, recording why; the first reason given stands."""
    if handle.task is None or handle.task.done() or handle.stop_reason is not None:
        return
    handle.stop_reason = reason
    handle.task.cancel()
