"""Executing one claimed run on LangGraph, from its last checkpoint to its next stop.

The executor owns the run while its worker holds the lease: it runs the compiled graph with
``durability="sync"`` (a finished step is on disk before the next starts), and ends with one
fenced transition (waiting, completed, failed, cancelled or released) that commits together
with the step's buffered writes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import traceback
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl
from langgraph.types import Command
from pydantic_core import to_jsonable_python

from graphrun import errors, validation, waits
from graphrun.backoff import Backoff
from graphrun.state_json import state_json
from graphrun.storage import checkpoints, lifecycle, signals
from graphrun.storage import runs as runs_store
from graphrun.storage.records import NODE_ERROR, Run, RunError, RunStatus
from graphrun.storage.runs import Change
from graphrun.waits import WaitingOn, WaitKind

from .run_config import execution_config

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from langgraph.pregel import Pregel

    from graphrun.config import Settings
    from graphrun.storage import Database

    from .graphs import BoundGraph
    from .notifier import ChangeNotifier

__all__ = (
    "Executor",
    "Handle",
    "Outcome",
    "StopReason",
    "jsonable",
)

logger = logging.getLogger("graphrun.executor")


class StopReason(enum.StrEnum):
    """Why a worker cancelled a run's execution, which decides what the executor records."""

    #: The run was cancelled: it ends ``cancelled``.
    CANCEL = "cancel"
    #: The worker is stopping: the run goes back to the queue, to continue elsewhere.
    SHUTDOWN = "shutdown"
    #: Another worker holds the run now: nothing more may be written.
    LEASE_LOST = "lease_lost"


@dataclass(eq=False)
class Handle:
    """A run in flight in this process, as the worker sees it."""

    run: Run
    task: asyncio.Task[None] | None = None
    #: Why the worker cancelled the task, if it did.
    stop_reason: StopReason | None = None
    #: Asks LangGraph to stop at the next step boundary (a pause), after its checkpoint.
    control: RunControl = field(default_factory=RunControl)

    def request_pause(self) -> None:
        """Stop the run after its current step; it becomes ``paused``."""
        self.control.request_drain("pause")


def jsonable(value: Any) -> Any:
    """The value as JSON types (pydantic models, dataclasses...), or its repr."""
    try:
        return to_jsonable_python(value)
    except Exception:
        return repr(value)


#: Where LangGraph's serializer lives: a TypeError raised in it is state it cannot store.
SERIALIZER_MODULES = "langgraph.checkpoint.serde."


def _raised_by_the_serializer(exc: BaseException) -> bool:
    """Whether ``exc`` came out of LangGraph's serializer (by its frames, not its message)."""
    frame = exc.__traceback__
    while frame is not None:
        if str(frame.tb_frame.f_globals.get("__name__", "")).startswith(SERIALIZER_MODULES):
            return True
        frame = frame.tb_next
    return False


def _error_info(exc: BaseException, node: str | None) -> RunError:
    """The stored `RunError` of an exception that failed a run."""
    kind = type(exc).__name__
    code = exc.code if isinstance(exc, errors.GraphrunError) else NODE_ERROR
    if isinstance(exc, TypeError) and _raised_by_the_serializer(exc):
        kind, code = errors.SerializationError.__name__, errors.SerializationError.code
    return RunError(
        code=code,
        type=kind,
        message=str(exc),
        node=node,
        traceback="".join(traceback.format_exception(exc)),
    )


@dataclass(frozen=True)
class Outcome:
    """How an execution ends: the transition to make, and with what."""

    action: str
    change: Change
    #: A cancel requested meanwhile turns this (non-terminal) outcome into ``cancelled``.
    cancel_wins: bool = False
    #: For ``wait``: what the run waits on (a signal already in its mailbox answers it).
    waits: tuple[WaitingOn, ...] = ()
    #: For ``wait``: child runs to start in the same transaction (``run_workflow``).
    children: tuple[runs_store.NewRun, ...] = ()


#: Storage errors that pass: the run is released rather than failed.
TRANSIENT_STORAGE_ERRORS = (
    errors.StorageBusy,
    errors.StorageFull,
    errors.StorageIOError,
    errors.DatabaseUnavailable,
)
RETRY_FIRST_S = 0.05  # seconds before retrying a final write the database refused
RETRY_MAX_S = 2.0  # seconds between retries at most


class Executor:
    """Runs claimed runs of compiled graphs; one per engine."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        notifier: ChangeNotifier,
        on_timer: Callable[[], None] | None = None,
        child_input: Callable[[str, Any], Awaitable[tuple[str, Any]]] | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.notifier = notifier
        #: Called when a run starts waiting on a timer (the timer loop looks again).
        self.on_timer = on_timer
        #: Validates a child run's input: ``(workflow, input) -> (version, input)``.
        self.child_input = child_input
        #: Called when child runs were queued (the worker looks for work).
        self.on_queued = on_queued
        self._finishing: set[asyncio.Task[Run | None]] = set()

    async def execute(self, handle: Handle, bound: BoundGraph) -> None:
        """Run ``handle.run`` until it waits, ends, fails, or the worker stops it.

        Whatever happens, the execution ends in one fenced transition (or, when the lease
        was lost, in none); if the database refuses that write for longer than the lease
        lives, the lease expires and the run goes back to the queue. A wait that signals in
        the mailbox answer at once keeps the run running here, under the same lease.
        """
        while True:
            after = await self._execute_once(handle, bound)
            if after is None or not self._continues(after):
                return
            # A stop asked meanwhile cancels this task at its next await, in `_run`, which
            # records it like any other stop.
            handle.run = after

    def _continues(self, run: Run) -> bool:
        return run.status is RunStatus.RUNNING and run.lease_owner == self.settings.worker_id

    async def _execute_once(self, handle: Handle, bound: BoundGraph) -> Run | None:
        run = handle.run
        if run.pause_requested:
            handle.request_pause()
        execution = checkpoints.Execution(
            fence=runs_store.Fence(
                run_id=run.id, owner=self.settings.worker_id, epoch=run.lease_epoch
            ),
            lease_ttl_s=self.settings.lease_ttl_s,
            fresh=run.checkpoint_id is None,
        )
        config: Any = execution_config(run, execution)
        outcome: Outcome | None
        try:
            outcome = await self._built_and_run(run, bound, config, execution, handle.control)
        except errors.LeaseLost:
            logger.warning("lease lost on run %s", run.id, extra={"action": "lease_lost"})
            return None
        except asyncio.CancelledError:
            if handle.stop_reason is None:
                raise
            outcome = _stopped(handle.stop_reason)
        if outcome is None:
            return None
        # The final write outlives a cancellation of this task (shutdown): it is the run's
        # state, and the database drains it before closing.
        finishing = asyncio.create_task(
            self._finish(run, execution, outcome), name=f"graphrun-finish-{run.id}"
        )
        self._finishing.add(finishing)
        finishing.add_done_callback(self._finishing.discard)
        cancelled = False
        while not finishing.done():
            try:
                await asyncio.shield(finishing)
            except asyncio.CancelledError:
                # The outcome is decided: hold on to the run (and its heartbeat) until it is
                # recorded, which `_finish` bounds by the lease's lifetime.
                cancelled = True
        if cancelled:
            after = finishing.result()
            stop = _stopped(handle.stop_reason) if handle.stop_reason else None
            if after is not None and self._continues(after) and stop is not None:
                # The wait was answered from the mailbox and the run would go on here, but
                # the worker is stopping it: record the stop now, under the same lease.
                await asyncio.shield(self._finish(after, execution, stop))
            raise asyncio.CancelledError
        return finishing.result()

    async def _built_and_run(
        self,
        run: Run,
        bound: BoundGraph,
        config: Any,
        execution: checkpoints.Execution,
        control: RunControl,
    ) -> Outcome:
        try:
            graph = await bound.for_run(execution_config(run))
        except errors.AppLoadError as exc:  # the app's graph factory failed: so does the run
            return _failed_outcome(exc, None)
        return await self._run(run, graph, config, execution, control)

    async def drain(self) -> None:
        """Wait for final writes still in progress (on shutdown); never cancels them."""
        if self._finishing:
            await asyncio.wait(list(self._finishing))

    async def _run(
        self,
        run: Run,
        graph: Pregel[Any, Any, Any, Any],
        config: Any,
        execution: checkpoints.Execution,
        control: RunControl,
    ) -> Outcome:
        graph_input = _graph_input(run)
        interrupted = False
        values: Any = None
        try:
            async for mode, chunk in graph.astream(
                graph_input,
                config,
                context=run.context,
                stream_mode=["updates", "values"],
                output_keys=graph.output_channels,
                durability="sync",
                control=control,
            ):
                if mode == "values":
                    values = chunk
                    continue
                for node in chunk:
                    if node == "__interrupt__":
                        interrupted = True
                    else:
                        execution.pending_events.append(("node", {"node": node}))
                self.notifier.notify(run.id, progress_only=True)
            if interrupted:
                return await self._waiting(run, graph, config) or _completed(values)
            return _completed(values)
        except GraphDrained:
            # Paused at a step boundary: the step before is checkpointed, the next not begun.
            return Outcome("pause", Change(status=RunStatus.PAUSED), cancel_wins=True)
        except errors.LeaseLost:
            raise
        except TRANSIENT_STORAGE_ERRORS as exc:
            # The database failed for a while, not the run: give it back to the queue, to
            # continue from its last checkpoint once the database is back.
            logger.warning(
                "run %s released after a storage error: %s",
                run.id,
                exc,
                extra={"action": "storage_error"},
            )
            return Outcome("release", Change(status=RunStatus.QUEUED), cancel_wins=True)
        except Exception as exc:  # including storage errors that a retry would only repeat
            return await self._failed(run, graph, config, exc)

    async def _finish(
        self, run: Run, execution: checkpoints.Execution, outcome: Outcome
    ) -> Run | None:
        db = self.db
        taken = execution.take()
        ending = Change(release_lease=True)
        if outcome.action != "release":  # a pause still asked is answered when claimed again
            ending = replace(ending, pause_requested=False)
        if not outcome.cancel_wins:
            ending = replace(ending, cancel_requested=False)
        if taken.root_checkpoint_id is not None:
            # Deferred checkpoints commit now: the run's progress marker moves with them.
            ending = replace(ending, checkpoint_id=taken.root_checkpoint_id)
        change = outcome.change.merged(ending)

        backoff = Backoff(RETRY_FIRST_S, RETRY_MAX_S)
        deadline = time.monotonic() + self.settings.lease_ttl_s
        run_after: Run | None = None
        try:
            while True:
                try:
                    if outcome.action == "wait":
                        run_after = await self._wait_or_continue(run, execution, taken, outcome)
                    else:
                        run_after = await lifecycle.transition(
                            db,
                            run.id,
                            action=outcome.action,
                            allowed=(RunStatus.RUNNING,),
                            change=change,
                            fence=execution.fence,
                            before=checkpoints.committing(db, taken),
                            cancel_wins=outcome.cancel_wins,
                        )
                    return run_after
                except errors.StorageError as exc:
                    delay = backoff.next_delay()
                    if time.monotonic() + delay > deadline or isinstance(
                        exc, errors.DatabaseClosed
                    ):
                        # Give up: the lease expires and the reaper requeues the run.
                        logger.error(
                            "could not record %s of run %s: %s",
                            outcome.action,
                            run.id,
                            exc,
                            extra={"action": "finish_failed"},
                        )
                        return None
                    await asyncio.sleep(delay)
        except (errors.LeaseLost, errors.TransitionConflict) as exc:
            logger.warning(
                "run %s: %s not recorded: %s",
                run.id,
                outcome.action,
                exc,
                extra={"action": "lease_lost"},
            )
        except Exception:  # the lease expires and the reaper requeues the run
            logger.exception(
                "run %s: %s not recorded", run.id, outcome.action, extra={"action": "finish_failed"}
            )
        finally:
            self.notifier.notify(run.id, run_after)
        return None

    async def _wait_or_continue(
        self,
        run: Run,
        execution: checkpoints.Execution,
        taken: checkpoints.Flush,
        outcome: Outcome,
    ) -> Run:
        """Make the run wait, unless signals in its mailbox answer the waits right away.

        Both happen in the transaction that commits the step: a signal sent meanwhile either
        is in the mailbox here, or finds the run waiting and is delivered by `signals.send`.
        """
        db = self.db
        progress = Change(pause_requested=False)
        if taken.root_checkpoint_id is not None:
            progress = replace(progress, checkpoint_id=taken.root_checkpoint_id)

        def job(conn: Any) -> Run:
            # Locks the run row first (PostgreSQL): a signal sent now waits for this
            # transaction and then finds the run waiting, or is in the mailbox read below;
            # and the events flushed next get ids after every committed change of the run.
            current = signals.lock_run(db, conn, run.id)
            checkpoints.flush(db, conn, taken)
            cancelling = current is not None and current.cancel_requested
            for child in () if cancelling else outcome.children:
                # Started with this wait; a child found again (the node re-ran) is left as it
                # is, unlocked: its own end may be locking it and then this run.
                if not runs_store.exists_in(conn, child.id):
                    lifecycle.insert_in(db, conn, child)
            delivered = (
                [] if cancelling else signals.deliver_queued(db, conn, run.id, outcome.waits)
            )
            if not delivered:
                change = progress.merged(outcome.change).merged(
                    Change(release_lease=True, cancel_requested=False)
                )
            else:
                answers = {d.interrupt_id: d.resume_value for d in delivered}
                change = progress.merged(Change(resume=answers, waiting_for=None))
                if current is not None and current.pause_requested:
                    # Answered, but asked to stop at this step boundary.
                    change = change.merged(Change(status=RunStatus.PAUSED, release_lease=True))
                # Otherwise the run continues here, under the same lease: no status change.
            return lifecycle.transition_in(
                db,
                conn,
                run.id,
                action="wait",
                allowed=(RunStatus.RUNNING,),
                change=change,
                fence=execution.fence,
                extra_events=[("signal", d.event) for d in delivered],
                cancel_wins=not delivered,
            )

        after = await db.write(job)
        if outcome.children and self.on_queued is not None:
            self.on_queued()
        wake_at = outcome.change.wake_at
        if after.status is RunStatus.WAITING and isinstance(wake_at, float) and self.on_timer:
            self.on_timer()
        return after

    async def _waiting(
        self, run: Run, graph: Pregel[Any, Any, Any, Any], config: Any
    ) -> Outcome | None:
        """The wait the graph stopped on, or None when nothing is left to run.

        An ``interrupt_after`` on the last node stops with nothing next: LangGraph's
        ``invoke`` then returns the state, and the run completes.
        """
        state = await graph.aget_state(config)
        pending: list[WaitingOn] = []
        children: list[runs_store.NewRun] = []
        for interrupt in state.interrupts:
            value = interrupt.value
            if waits.asked_kind(value) is WaitKind.WORKFLOW:
                child = await self._child(
                    run, interrupt.id, value.get("workflow"), value.get("input")
                )
                children.append(child)
                pending.append(
                    WaitingOn(
                        id=interrupt.id,
                        kind=WaitKind.WORKFLOW,
                        name=signals.CHILD_SIGNAL + child.id,
                        prompt={"workflow": child.workflow, "run_id": child.id},
                    )
                )
            else:
                pending.append(waits.read_wait(interrupt.id, value, jsonable))
        if not state.interrupts and state.next:  # stopped at interrupt_before/after
            pending.append(waits.breakpoint_wait(state.next))
        if not pending:
            return None
        due = [w.wake_at.timestamp() for w in pending if w.wake_at is not None]
        return Outcome(
            "wait",
            Change(
                status=RunStatus.WAITING,
                waiting_for=tuple(pending),
                resume=None,
                wake_at=min(due) if due else None,
            ),
            cancel_wins=True,
            waits=tuple(pending),
            children=tuple(children),
        )

    async def _child(
        self, parent: Run, interrupt_id: str, workflow: Any, input: Any
    ) -> runs_store.NewRun:
        """The child run a ``run_workflow`` call starts: the same one every time it is reached."""
        if self.child_input is None or not isinstance(workflow, str):
            raise errors.WorkflowNotFound(str(workflow), [])
        version, normalized = await self.child_input(workflow, input)
        return runs_store.NewRun(
            id=str(uuid.uuid5(uuid.UUID(parent.id), interrupt_id)),
            workflow=workflow,
            definition_version=version,
            input=normalized,
            input_hash=validation.canonical_hash(normalized),
            idempotency_key=f"graphrun.child:{parent.id}:{interrupt_id}",
            parent_id=parent.id,
        )

    async def _failed(
        self,
        run: Run,
        graph: Pregel[Any, Any, Any, Any],
        config: Any,
        exc: Exception,
    ) -> Outcome:
        node = None
        try:
            state = await graph.aget_state(config)
            node = next((t.name for t in state.tasks if t.error is not None), None)
        except Exception:  # the error itself may make the state unreadable
            logger.debug("could not read state of failed run %s", run.id, exc_info=True)
        logger.info("run %s failed in %s: %r", run.id, node, exc, extra={"action": "run_failed"})
        return _failed_outcome(exc, node)


def _graph_input(run: Run) -> Any:
    """What the graph is invoked with: the input, the answers, or None to go on."""
    if run.checkpoint_id is None:
        return run.input
    if run.resume and not waits.continues_past_breakpoint(run.resume):
        return Command(resume=run.resume)
    return None  # from the last checkpoint (past a breakpoint: LangGraph's invoke(None))


def _failed_outcome(exc: BaseException, node: str | None) -> Outcome:
    return Outcome(
        "fail",
        Change(status=RunStatus.FAILED, error=_error_info(exc, node), waiting_for=None),
        cancel_wins=True,
    )


def _completed(values: Any) -> Outcome:
    try:
        output = state_json(values)
    except RecursionError as exc:
        error = _error_info(errors.SerializationError(f"Final state nests too deep: {exc}"), None)
        return Outcome("fail", Change(status=RunStatus.FAILED, error=error), cancel_wins=True)
    return Outcome(
        "complete",
        Change(status=RunStatus.COMPLETED, output=output, waiting_for=None, error=None),
        cancel_wins=True,
    )


def _stopped(reason: StopReason) -> Outcome | None:
    if reason is StopReason.CANCEL:
        return Outcome("cancel", Change(status=RunStatus.CANCELLED))
    if reason is StopReason.SHUTDOWN:
        return Outcome("release", Change(status=RunStatus.QUEUED), cancel_wins=True)
    return None  # lease lost: another worker owns the run now
