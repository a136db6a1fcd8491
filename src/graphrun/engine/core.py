"""What an engine's services share: settings, the open database, apps, the worker, wake-ups.

`Engine` builds one `Core` and hands it to each service (`runs`, `schedules`, `retention`,
`workflows`, `apps`); the services never see the engine itself. The few steps several of
them take (validating a start's input, a write that a local worker claims in the same
transaction, announcing a changed run) live here, once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from graphrun import errors, validation
from graphrun.apps import AppRegistry
from graphrun.config import Settings
from graphrun.ids import RunIdFactory
from graphrun.storage import Database, catalog
from graphrun.storage.records import Run, RunStatus, WorkflowRecord

from .notifier import ChangeNotifier
from .runtime import Runtime

if TYPE_CHECKING:
    from graphrun.storage.checkpoints import GraphrunCheckpointer
    from graphrun.storage.store import GraphrunStore

    from .app_host import AppHost
    from .graphs import BoundGraph
    from .worker import Worker

__all__ = ("Core", "parse_run_id")

T = TypeVar("T")


def parse_run_id(run_id: str) -> str:
    """The canonical form of a run id.

    Raises:
        RunNotFound: It is not a UUID (so no run has it).
    """
    try:
        return str(uuid.UUID(str(run_id)))
    except ValueError:
        raise errors.RunNotFound(str(run_id)) from None


@dataclass(eq=False, kw_only=True)
class Core:
    """The state an engine's services share; owned by one `Engine`."""

    settings: Settings
    registry: AppRegistry
    apps: AppHost
    runtime: Runtime
    notifier: ChangeNotifier = field(default_factory=ChangeNotifier)
    ids: RunIdFactory = field(default_factory=RunIdFactory)
    #: Set while the engine is open.
    database: Database | None = None
    checkpointer: GraphrunCheckpointer | None = None
    #: The store of every app (the outside view: a namespace starts with the app's name).
    stores: GraphrunStore | None = None
    #: This engine's worker, while it runs one.
    worker: Worker | None = None
    #: The loaded workflows' graphs, bound to the checkpointer.
    graphs: dict[str, BoundGraph] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        """The open database.

        Raises:
            DatabaseClosed: The engine is not open.
        """
        if self.database is None:
            raise errors.DatabaseClosed("The engine is not open: use `async with Engine(...)`.")
        return self.database

    @property
    def saver(self) -> GraphrunCheckpointer:
        """The open database's checkpointer.

        Raises:
            DatabaseClosed: The engine is not open.
        """
        if self.checkpointer is None:
            raise errors.DatabaseClosed("The engine is not open: use `async with Engine(...)`.")
        return self.checkpointer

    def changed(self, run: Run) -> None:
        """This process changed ``run``: wake its waiters, and the worker for a queued one."""
        self.notifier.notify(run.id, run)
        if run.status is RunStatus.QUEUED and self.worker is not None:
            self.worker.wake()

    def wake_worker(self) -> None:
        """Have the worker look for queued runs now."""
        if self.worker is not None:
            self.worker.wake()

    async def validated_input(
        self,
        workflow: str,
        input: Any,
        *,
        config: dict[str, Any] | None = None,
        context: Any = None,
    ) -> tuple[str, Any]:
        """The workflow's current version, and ``input`` checked for it: what to store.

        A workflow loaded here is checked by LangGraph's own input step (with the run's
        ``config`` and ``context``); one only published by another process, by the schema
        it published when that schema is a check (a manifest model, a YAML definition).

        Raises:
            WorkflowNotFound: No loaded or published workflow has this name.
            ValidationFailed: The input (or context) fails the workflow's checks.
        """
        validation.check_json(input, what="input")
        loaded = self.registry.get(workflow)
        if loaded is not None:
            checked = await loaded.checked_input(input, config=config, context=context)
            return loaded.version, checked
        record = await self.published(workflow)
        if input is None:
            input = {}
        if record.input_enforced:
            validation.validate_with_schema(input, record.input_schema, what="input")
        return record.version, input

    async def published(self, workflow: str) -> WorkflowRecord:
        """The newest published version of ``workflow``.

        Raises:
            WorkflowNotFound: No worker published a workflow of this name.
        """
        known = {w.name: w for w in await catalog.latest(self.db)}
        if workflow not in known:
            raise errors.WorkflowNotFound(workflow, sorted({*known, *self.registry.names()}))
        return known[workflow]

    async def check_servable(self, run: Run) -> None:
        """Raise `DefinitionChanged` unless some worker can execute ``run``'s version."""
        loaded = self.registry.get(run.workflow)
        await self.apps.check_servable(self.db, run, loaded.version if loaded else None)

    async def claiming(
        self,
        workflow: str,
        version: str,
        write: Callable[[str | None], Awaitable[tuple[T, bool]]],
        run_of: Callable[[T], Run],
    ) -> tuple[T, bool]:
        """Make a write that a local worker with room claims the run in (no claim round trip).

        ``write(claim_for)`` returns a result (``run_of`` finds the run in it) and whether
        the run changed. The worker adopts what the write claimed even when the caller is
        cancelled meanwhile: the write commits regardless, and a claimed run nobody executes
        would sit until its lease expired.
        """
        worker = self.worker
        local = worker is not None and worker.serves(workflow, version) and worker.reserve()
        task = asyncio.ensure_future(write(self.settings.worker_id if local else None))
        if local and worker is not None:

            def adopt(done: asyncio.Future[tuple[T, bool]]) -> None:
                if done.cancelled() or done.exception() is not None:
                    worker.adopt(None)
                else:
                    result, changed = done.result()
                    run = run_of(result)
                    worker.adopt(run if changed and run.status is RunStatus.RUNNING else None)

            task.add_done_callback(adopt)
        return await asyncio.shield(task)
