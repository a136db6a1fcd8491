"""Executing one claimed run on LangGraph, from its last checkpoint to its next stop.

The executor owns the run while its worker holds the lease: it runs the compiled graph with
``durability="sync"`` (a finished step is on disk before the next starts), and ends with one
fenced transition (waiting, completed, failed, cancelled or released) that commits together
with the step's buffered writes.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langgraph._internal import _serde as lg_serde
from langgraph.types import Command
from pydantic_core import to_jsonable_python

from graphrun import errors, validation
from graphrun.storage import checkpoints
from graphrun.storage import runs as runs_store
from graphrun.storage.records import Run, RunStatus, WaitingOn

from .authoring import INTERRUPT_MARKER

if TYPE_CHECKING:
    from langgraph.graph import StateGraph
    from langgraph.graph.state import CompiledStateGraph
    from sqlalchemy.engine import Connection

    from graphrun.config import Settings
    from graphrun.storage import Database

    from .notifier import ChangeNotifier

__all__ = ("Executor", "Handle", "compile_graph")

logger = logging.getLogger("graphrun.executor")

RECURSION_LIMIT = 10_000  # super-steps per execution before LangGraph calls it a loop


def compile_graph(
    builder: StateGraph[Any, Any, Any, Any], saver: checkpoints.GraphrunCheckpointer
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile an app's builder onto our saver, allowing exactly its state types to load."""
    schemas: list[Any] = [builder.state_schema, builder.input_schema, builder.output_schema]
    schemas += [node.input_schema for node in builder.nodes.values()]
    allowlist = lg_serde.build_serde_allowlist(schemas=schemas, channels=builder.channels)
    return builder.compile(checkpointer=saver.with_allowlist(allowlist))


@dataclass(eq=False)
class Handle:
    """A run in flight in this process, as the worker sees it."""

    run: Run
    task: asyncio.Task[None] | None = None
    #: Why the worker cancelled the task: ``cancel``, ``shutdown`` or ``lease_lost``.
    stop_reason: str | None = None


def _waiting_on(interrupt_id: str, value: Any) -> WaitingOn:
    if isinstance(value, dict) and INTERRUPT_MARKER in value:
        return WaitingOn(
            id=interrupt_id,
            kind=str(value[INTERRUPT_MARKER]),
            prompt=_jsonable(value.get("prompt")),
            schema=value.get("schema"),
        )
    return WaitingOn(id=interrupt_id, kind="input", prompt=_jsonable(value))


def _jsonable(value: Any) -> Any:
    try:
        return to_jsonable_python(value)
    except Exception:
        return repr(value)


def _error_info(exc: BaseException, node: str | None) -> dict[str, Any]:
    kind = type(exc).__name__
    if isinstance(exc, TypeError) and "serializ" in str(exc):
        kind = errors.SerializationError.__name__
    return {
        "type": kind,
        "message": str(exc),
        "node": node,
        "traceback": "".join(traceback.format_exception(exc)),
    }


_LEAVE_LEASE = {"lease_owner": None, "lease_expires_at": None, "cancel_requested": False}


class Executor:
    """Runs claimed runs of compiled graphs; one per engine."""

    def __init__(self, db: Database, settings: Settings, notifier: ChangeNotifier) -> None:
        self.db = db
        self.settings = settings
        self.notifier = notifier

    async def execute(self, handle: Handle, graph: CompiledStateGraph[Any, Any, Any, Any]) -> None:
        """Run ``handle.run`` until it waits, ends, fails, or the worker stops it."""
        run = handle.run
        execution = checkpoints.Execution(
            fence=runs_store.Fence(
                run_id=run.id, owner=self.settings.worker_id, epoch=run.lease_epoch
            ),
            lease_ttl_s=self.settings.lease_ttl_s,
            fresh=run.checkpoint_id is None,
        )
        config: Any = {
            "configurable": {"thread_id": run.id, checkpoints.EXECUTION_KEY: execution},
            "recursion_limit": RECURSION_LIMIT,
        }
        graph_input: Any
        if run.checkpoint_id is None:
            graph_input = run.input
        elif run.resume:
            graph_input = Command(resume=run.resume)
        else:
            graph_input = None  # continue from the last checkpoint
        interrupted = False
        values: Any = None
        try:
            async for mode, chunk in graph.astream(
                graph_input, config, stream_mode=["updates", "values"], durability="sync"
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
        except errors.LeaseLost:
            logger.warning("lease lost on run %s", run.id, extra={"action": "lease_lost"})
            return
        except asyncio.CancelledError:
            if handle.stop_reason is None:
                raise
            await self._stopped(handle, execution)
            return
        except Exception as exc:
            await self._failed(run, graph, config, execution, exc)
            return
        if interrupted:
            await self._waiting(run, graph, config, execution)
        else:
            await self._completed(run, execution, values)

    async def _finish(
        self,
        run: Run,
        execution: checkpoints.Execution,
        action: str,
        values: dict[str, Any],
    ) -> None:
        db = self.db
        taken = execution.take()
        if taken.root_checkpoint_id is not None:
            # Deferred checkpoints commit now: the run's progress marker moves with them.
            values = {**values, "checkpoint_id": taken.root_checkpoint_id}

        def flush(conn: Connection) -> None:
            checkpoints.flush(db, conn, taken)

        run_after: Run | None = None
        try:
            run_after = await runs_store.transition(
                db,
                run.id,
                action=action,
                allowed=(RunStatus.RUNNING,),
                values={**values, **_LEAVE_LEASE},
                fence=execution.fence,
                before=flush,
            )
        except errors.LeaseLost:
            logger.warning(
                "lease lost on run %s before %s", run.id, action, extra={"action": "lease_lost"}
            )
        finally:
            self.notifier.notify(run.id, run_after)

    async def _waiting(
        self,
        run: Run,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        config: Any,
        execution: checkpoints.Execution,
    ) -> None:
        state = await graph.aget_state(config)
        waiting = [_waiting_on(i.id, i.value).to_json() for i in state.interrupts]
        await self._finish(
            run,
            execution,
            "wait",
            {"status": RunStatus.WAITING, "waiting_for": waiting, "resume": None},
        )

    async def _completed(self, run: Run, execution: checkpoints.Execution, values: Any) -> None:
        try:
            output = to_jsonable_python(values)
            validation.check_json(output, what="final state")
        except (errors.ValidationFailed, ValueError, TypeError) as exc:
            error = _error_info(errors.SerializationError(f"Final state is not JSON: {exc}"), None)
            await self._finish(run, execution, "fail", {"status": RunStatus.FAILED, "error": error})
            return
        await self._finish(
            run,
            execution,
            "complete",
            {"status": RunStatus.COMPLETED, "output": output, "waiting_for": None, "error": None},
        )

    async def _failed(
        self,
        run: Run,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        config: Any,
        execution: checkpoints.Execution,
        exc: Exception,
    ) -> None:
        node = None
        try:
            state = await graph.aget_state(config)
            node = next((t.name for t in state.tasks if t.error is not None), None)
        except Exception:  # the error itself may make the state unreadable
            logger.debug("could not read state of failed run %s", run.id, exc_info=True)
        logger.info("run %s failed in %s: %r", run.id, node, exc, extra={"action": "run_failed"})
        await self._finish(
            run,
            execution,
            "fail",
            {"status": RunStatus.FAILED, "error": _error_info(exc, node), "waiting_for": None},
        )

    async def _stopped(self, handle: Handle, execution: checkpoints.Execution) -> None:
        run = handle.run
        if handle.stop_reason == "cancel":
            await self._finish(run, execution, "cancel", {"status": RunStatus.CANCELLED})
        elif handle.stop_reason == "shutdown":
            await self._finish(run, execution, "release", {"status": RunStatus.QUEUED})
