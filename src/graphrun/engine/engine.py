"""`Engine`: the one object that owns a graphrun deployment's database, apps and worker.

A facade: it holds the settings, opens and closes everything in order, and composes the
services that do the work, each a public attribute:

- ``engine.runs``: start, read, wait on and steer runs (`RunService`); the common verbs
  (`start`, `get`, `wait`, `resume`, `signal`, `cancel`, `pause`, `retry`, `fork`,
  `list_runs`) are on the engine too;
- ``engine.schedules``: cron and interval schedules (`Schedules`);
- ``engine.workflows``: the published catalog and the loaded workflows (`Workflows`);
- ``engine.apps``: app installs and every app's state (`Apps`);
- ``engine.retention``: the retention policy's stats and purge (`Retention`);
- ``engine.keys``: the API keys (`ApiKeys`);
- ``engine.runtime``: every background task (`Runtime`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from graphrun import errors
from graphrun.apps import AppRegistry
from graphrun.config import Settings
from graphrun.storage import Database, Listener, catalog, checkpoints, migrations, open_database
from graphrun.storage import apps as apps_store
from graphrun.storage import schedules as schedules_store
from graphrun.storage import timers as timers_store
from graphrun.storage.records import Run, RunPage, RunStatus, SignalSent
from graphrun.storage.store import GraphrunStore

from .app_host import AppHost
from .app_service import Apps
from .core import Core
from .due_loop import DueLoop
from .executor import Executor
from .graphs import bind_graph
from .keys import ApiKeys
from .retention import Retention
from .runs import RunService
from .runtime import Runtime
from .scheduling import Schedules
from .worker import Worker
from .workflows import Workflows

__all__ = ("Engine",)


class Engine:
    """A graphrun engine: start, inspect and steer runs; execute them with a worker.

    Use as an async context manager::

        async with Engine(database_url="sqlite:///graphrun.db", apps=["examples/orders"]) as engine:
            run = await engine.start("orders.fulfil", {"order_id": "A1"})
            run = await engine.wait(run.id)

    Everything the engine uses (settings, database, app registry, worker) belongs to this
    object; two engines in one process share nothing.

    Args:
        database_url: Overrides ``settings.database_url``.
        apps: App folders to load; their workflows are executed by this engine's worker
            (an app with dependencies by a worker process on its own environment).
        settings: Full settings; by default read from ``GRAPHRUN_*`` variables.
        strict_apps: Raise when an app fails to load (the default); otherwise record it
            as failed, with its traceback, and serve the others (``graphrun serve``).
        drain: Serve only runs already started on the loaded versions, publish nothing
            and fire no schedules: a worker kept for an old version.
        **overrides: Individual `Settings` fields (``concurrency=10``, ``lease_ttl_s=5``...).
    """

    def __init__(
        self,
        database_url: str | None = None,
        apps: Sequence[str | Path] = (),
        *,
        settings: Settings | None = None,
        strict_apps: bool = True,
        drain: bool = False,
        **overrides: Any,
    ) -> None:
        base = settings or Settings.from_env()
        if database_url is not None:
            overrides["database_url"] = database_url
        self.settings = (
            Settings.from_env({}, **{**base.__dict__, **overrides}) if overrides else base
        )
        self.drain = drain
        #: Every background task of this engine.
        self.runtime = Runtime()
        registry = AppRegistry()
        host = AppHost(
            self.settings, [Path(p) for p in apps], registry, self.runtime, strict=strict_apps
        )
        self._core = core = Core(
            settings=self.settings, registry=registry, apps=host, runtime=self.runtime
        )
        self.runs = RunService(core)
        self.schedules = Schedules(core)
        self.workflows = Workflows(core)
        self.apps = Apps(core)
        self.retention = Retention(core)
        #: PostgreSQL: hears runs other processes queue (None elsewhere).
        self.listener: Listener | None = None
        self._loops: list[DueLoop] = []
        #: The worker `stop_worker` is stopping (a second signal forces it).
        self._stopping: Worker | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, migrate, load apps, publish their workflows and start the worker.

        Raises:
            AppLoadError: An app failed to import (nothing is started; with
                ``strict_apps=False`` it is recorded as failed and the others serve).
            ManifestError: An app manifest is invalid.
            DefinitionError: A declarative workflow is invalid.
            StorageError: The database cannot be used.
        """
        core = self._core
        await core.apps.load()
        db = core.database = await open_database(
            self.settings.database_url,
            synchronous=self.settings.sqlite_synchronous,
            busy_timeout_s=self.settings.busy_timeout_s,
            pool_size=self.settings.pg_pool_size,
        )
        try:
            core.checkpointer = saver = checkpoints.GraphrunCheckpointer(db)
            core.stores = stores = GraphrunStore(db)
            core.graphs = {
                wf.name: bind_graph(
                    wf.graph, saver, stores.for_app(app.manifest.name), app_modules=app.modules
                )
                for app in core.registry.apps()
                for wf in app.workflows
            }
            if not self.drain:
                await self._publish(db)
            if self.settings.run_worker and not self.drain:
                await core.apps.start(db, {wf.name: wf.version for wf in core.registry})
            if self.settings.run_worker and core.graphs:
                await self._start_worker(db)
        except BaseException:
            await core.apps.close()
            await db.close()
            core.database = None
            raise

    async def _publish(self, db: Database) -> None:
        """Record the loaded apps and publish their workflows to the catalog."""
        core = self._core
        await core.apps.record(db)
        await catalog.publish(
            db,
            [
                catalog.Publication(
                    name=wf.name,
                    version=wf.version,
                    app=wf.app,
                    input_schema=wf.input_schema,
                    input_enforced=wf.input_enforced,
                    graph=core.graphs[wf.name].template.get_graph().draw_mermaid(),
                    signals=wf.signals,
                    app_version=wf.app_version,
                    kind=wf.kind,
                )
                for wf in core.registry
            ],
        )

    async def _start_worker(self, db: Database) -> None:
        """Start the worker and the loops that feed it (timers, schedules, purge, listener)."""
        core = self._core
        timer_loop = DueLoop(
            "timers",
            self.settings,
            lambda: timers_store.next_due(db),
            self._wake_timers,
            self.runtime,
        )
        executor = Executor(
            db,
            self.settings,
            core.notifier,
            timer_loop.nudge,
            child_input=core.validated_input,
            on_queued=core.wake_worker,
        )
        versions = {wf.name: wf.version for wf in core.registry}
        core.worker = Worker(db, self.settings, executor, core.graphs, versions, self.runtime)
        await core.worker.start()
        self._loops = [timer_loop]
        if not self.drain:
            self._loops.append(
                DueLoop(
                    "schedules",
                    self.settings,
                    lambda: schedules_store.next_due(db),
                    self.schedules.fire_due,
                    self.runtime,
                )
            )
            if self.settings.purge_interval_s > 0:
                self.runtime.start("purge", self.retention.run_periodically)
        for loop in self._loops:
            loop.start()
        self.listener = db.listener(self._on_queued, core.wake_worker)
        if self.listener is not None:
            self.runtime.start("listener", self.listener.run)

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop the worker (releasing unfinished runs to the queue) and close the database.

        Args:
            grace_s: How long in-flight runs may keep going before they are released.
        """
        await self._core.apps.close(grace_s)
        await self.stop_worker(grace_s)
        db, self._core.database = self._core.database, None
        if db is not None:
            await db.close()

    async def stop_worker(self, grace_s: float = 0.0) -> None:
        """Stop executing runs (see `Worker.stop`) while the engine stays open for requests."""
        await self.runtime.stop("purge", "listener")
        loops, self._loops = self._loops, []
        for loop in loops:
            await loop.stop()
        worker, self._core.worker = self._core.worker, None
        if worker is not None:
            self._stopping = worker
            try:
                await worker.stop(grace_s)
            finally:
                self._stopping = None

    def force_stop(self) -> None:
        """End a graceful stop's grace period now: release every unfinished run."""
        for worker in (self._stopping, self._core.worker):
            if worker is not None:
                worker.force_stop()

    async def drained(self) -> None:
        """Return once no run of the loaded versions is queued or running (checked twice).

        A worker kept for an old version (``graphrun worker --drain``) ends then; the engine
        that keeps it starts it again when one of its runs is queued.
        """
        core = self._core
        versions = {wf.version for wf in core.registry}
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(core.apps.interval_s)
            busy = [
                u
                for u in await apps_store.unfinished(self.db, core.registry.names())
                if u.definition_version in versions
                and (u.counts.get("queued", 0) or u.counts.get("running", 0))
            ]
            quiet = 0 if busy or (core.worker and core.worker.active_runs) else quiet + 1

    async def check_ready(self) -> None:
        """Raise unless the database answers and its schema is current.

        Raises:
            StorageError: The database does not answer (or `MigrationRequired`).
        """
        await migrations.check_current(self.db)

    def _on_queued(self, workflow: str) -> None:
        """Another process queued a run of ``workflow``: claim it now if this worker serves it."""
        worker = self._core.worker
        if worker is not None and worker.serves(workflow):
            worker.wake()

    async def _wake_timers(self) -> int:
        """Queue the runs whose timer is due (the timer loop calls this)."""
        woken = await timers_store.wake_due(self.db)
        for run in woken:
            self._core.changed(run)
        return len(woken)

    # -- what the engine holds -----------------------------------------------------------

    @property
    def db(self) -> Database:
        """The open database.

        Raises:
            DatabaseClosed: The engine is not open.
        """
        return self._core.db

    @property
    def store(self) -> GraphrunStore:
        """LangGraph's store of every app, from outside: a namespace starts with the app.

        ``engine.store.put(("orders", "users", "ada"), "prefs", {...})`` is what the
        ``orders`` app's nodes read as ``store.get(("users", "ada"), "prefs")``.

        Raises:
            DatabaseClosed: The engine is not open.
        """
        if self._core.stores is None:
            raise errors.DatabaseClosed("The engine is not open: use `async with Engine(...)`.")
        return self._core.stores

    @property
    def worker(self) -> Worker | None:
        """This engine's worker, if it runs one (for tests and diagnostics)."""
        return self._core.worker

    @property
    def keys(self) -> ApiKeys:
        """The API keys stored in this engine's database."""
        return ApiKeys(self.db)

    # -- the common run verbs (see `RunService`) -----------------------------------------

    async def start(
        self,
        workflow: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        config: dict[str, Any] | None = None,
        context: Any = None,
    ) -> Run:
        """Start a run of ``workflow`` with ``input``; see `RunService.start`."""
        return await self.runs.start(
            workflow, input, idempotency_key=idempotency_key, config=config, context=context
        )

    async def get(self, run_id: str) -> Run:
        """The run with this id; see `RunService.get`."""
        return await self.runs.get(run_id)

    async def wait(self, run_id: str, *, timeout: float | None = None) -> Run:
        """Wait until the run is no longer queued or running; see `RunService.wait`."""
        return await self.runs.wait(run_id, timeout=timeout)

    async def list_runs(
        self,
        *,
        status: RunStatus | str | Collection[RunStatus | str] | None = None,
        workflow: str | None = None,
        created_after: datetime | float | None = None,
        created_before: datetime | float | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """A page of runs, newest first; see `RunService.list_runs`."""
        return await self.runs.list_runs(
            status=status,
            workflow=workflow,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )

    async def resume(
        self,
        run_id: str,
        value: Any = None,
        *,
        interrupt_id: str | None = None,
        answers: dict[str, Any] | None = None,
    ) -> Run:
        """Answer a waiting run's interrupts, or resume a paused run; see `RunService.resume`."""
        return await self.runs.resume(run_id, value, interrupt_id=interrupt_id, answers=answers)

    async def signal(self, run_id: str, name: str, payload: Any = None) -> SignalSent:
        """Send the signal ``name`` to a run; see `RunService.signal`."""
        return await self.runs.signal(run_id, name, payload)

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run; see `RunService.cancel`."""
        return await self.runs.cancel(run_id)

    async def pause(self, run_id: str) -> Run:
        """Pause a run at its next step boundary; see `RunService.pause`."""
        return await self.runs.pause(run_id)

    async def retry(self, run_id: str) -> Run:
        """Queue a failed run again; see `RunService.retry`."""
        return await self.runs.retry(run_id)

    async def fork(self, run_id: str, checkpoint_id: str | None = None, update: Any = None) -> Run:
        """Start a new run from a checkpoint of another; see `RunService.fork`."""
        return await self.runs.fork(run_id, checkpoint_id, update)
