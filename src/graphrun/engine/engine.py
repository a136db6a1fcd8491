"""`Engine`: the one object that owns a graphrun deployment's database, apps and worker."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from langgraph.errors import InvalidUpdateError

from graphrun import errors, validation
from graphrun.apps import AppRegistry, LoadedWorkflow
from graphrun.config import Settings
from graphrun.ids import RunIdFactory
from graphrun.storage import (
    Database,
    Listener,
    catalog,
    checkpoints,
    events,
    migrations,
    open_database,
    retention,
    schedules,
    signals,
    timers,
)
from graphrun.storage import apps as apps_store
from graphrun.storage import runs as runs_store
from graphrun.storage.records import (
    CheckpointRecord,
    EventRecord,
    Run,
    RunPage,
    RunStatus,
    ScheduleRecord,
    SignalRecord,
    SignalSent,
    WaitingOn,
    WorkflowRecord,
)
from graphrun.waits import WaitKind

from .app_host import AppHost, AppOverview, InstallResult
from .due_loop import DueLoop
from .executor import Executor, compile_graph, jsonable
from .keys import ApiKeys
from .notifier import IN_FLIGHT, ChangeNotifier, wait_for_event
from .runtime import Runtime
from .schedules import check_spec, first_fire, next_after
from .worker import Worker

__all__ = ("Engine",)

logger = logging.getLogger("graphrun.engine")

CAS_RETRIES = 3  # re-reads when a transition loses only on the version

T = TypeVar("T")


def _parse_run_id(run_id: str) -> str:
    try:
        return str(uuid.UUID(str(run_id)))
    except ValueError:
        raise errors.RunNotFound(str(run_id)) from None


def _timestamp(value: datetime | float | None) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    if value.tzinfo is None:
        raise errors.ValidationFailed(
            "time filter", [{"pointer": "", "message": "datetimes must be timezone-aware"}]
        )
    return value.timestamp()


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
        self._app_paths = [Path(p) for p in apps]
        self.registry = AppRegistry()
        self.drain = drain
        #: Every background task of this engine.
        self.runtime = Runtime()
        self.apps = AppHost(
            self.settings, self._app_paths, self.registry, self.runtime, strict=strict_apps
        )
        self.notifier = ChangeNotifier()
        self._ids = RunIdFactory()
        self._db: Database | None = None
        self._worker: Worker | None = None
        self._loops: list[DueLoop] = []
        #: PostgreSQL: hears runs other processes queue (None elsewhere).
        self.listener: Listener | None = None
        self._graphs: dict[str, Any] = {}

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
        await self.apps.load()
        self._db = await open_database(
            self.settings.database_url,
            synchronous=self.settings.sqlite_synchronous,
            busy_timeout_s=self.settings.busy_timeout_s,
            pool_size=self.settings.pg_pool_size,
        )
        try:
            saver = checkpoints.GraphrunCheckpointer(self._db)
            self.checkpointer = saver
            self._graphs = {wf.name: compile_graph(wf.builder, saver) for wf in self.registry}
            if not self.drain:
                await self.apps.record(self._db)
                await catalog.publish(
                    self._db,
                    [
                        catalog.Publication(
                            name=wf.name,
                            version=wf.version,
                            app=wf.app,
                            input_schema=wf.input_schema,
                            graph=self._graphs[wf.name].get_graph().draw_mermaid(),
                            signals=wf.signals,
                            app_version=wf.app_version,
                            kind=wf.kind,
                        )
                        for wf in self.registry
                    ],
                )
            if self.settings.run_worker and not self.drain:
                await self.apps.start(self._db, {wf.name: wf.version for wf in self.registry})
            if self.settings.run_worker and self._graphs:
                db = self._db
                timer_loop = DueLoop(
                    "timers",
                    self.settings,
                    lambda: timers.next_due(db),
                    self._wake_timers,
                    self.runtime,
                )
                schedule_loop = DueLoop(
                    "schedules",
                    self.settings,
                    lambda: schedules.next_due(db),
                    self._fire_schedules,
                    self.runtime,
                )
                executor = Executor(
                    self._db,
                    self.settings,
                    self.notifier,
                    timer_loop.nudge,
                    child_input=self._validated_input,
                    on_queued=self._wake_worker,
                )
                versions = {wf.name: wf.version for wf in self.registry}
                self._worker = Worker(
                    self._db, self.settings, executor, self._graphs, versions, self.runtime
                )
                await self._worker.start()
                self._loops = [timer_loop] if self.drain else [timer_loop, schedule_loop]
                if not self.drain and self.settings.purge_interval_s > 0:
                    self.runtime.start("purge", self._purge_loop)
                for loop in self._loops:
                    loop.start()
                listener = db.listener(self._on_queued, self._wake_worker)
                if listener is not None:
                    self.listener = listener
                    self.runtime.start("listener", listener.run)
        except BaseException:
            await self.apps.close()
            await self._db.close()
            self._db = None
            raise

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop the worker (releasing unfinished runs to the queue) and close the database.

        Args:
            grace_s: How long in-flight runs may keep going before they are released.
        """
        await self.apps.close(grace_s)
        await self._stop_loops()
        if self._worker is not None:
            await self._worker.stop(grace_s)
            self._worker = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def stop_worker(self, grace_s: float = 0.0) -> None:
        """Stop executing runs (see `Worker.stop`) while the engine stays open for requests."""
        await self._stop_loops()
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop(grace_s)

    def _wake_worker(self) -> None:
        if self._worker is not None:
            self._worker.wake()

    def _on_queued(self, workflow: str) -> None:
        """Another process queued a run of ``workflow``: claim it now if this worker serves it."""
        if self._worker is not None and self._worker.serves(workflow):
            self._worker.wake()

    async def _stop_loops(self) -> None:
        await self.runtime.stop("purge", "listener")
        loops, self._loops = self._loops, []
        for loop in loops:
            await loop.stop()

    async def _wake_timers(self) -> int:
        """Queue the runs whose timer is due (the timer loop calls this)."""
        woken = await timers.wake_due(self.db)
        for run in woken:
            self._changed(run)
        return len(woken)

    async def _fire_schedules(self) -> int:
        """Start the runs of the schedules due now (the schedule loop calls this)."""
        fired = await schedules.fire_due(self.db, next_after=next_after, new_id=self._ids.new)
        for item in fired:
            if item.run is None:
                logger.warning(
                    "schedule %s: no worker has published its workflow; nothing started",
                    item.schedule_id,
                    extra={"action": "schedule_skipped"},
                )
            elif item.created:
                self._changed(item.run)
        return len(fired)

    # -- schedules -----------------------------------------------------------------------

    async def create_schedule(
        self,
        schedule_id: str,
        workflow: str,
        input: Any = None,
        *,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
    ) -> ScheduleRecord:
        """Start ``workflow`` with ``input`` at every cron time, or every ``every`` seconds.

        Each due time starts exactly one run, however many engines share the database; due
        times missed while no engine ran fire once, when one runs again.

        Args:
            schedule_id: A name for the schedule (``[a-z0-9][a-z0-9_.-]{0,63}``).
            workflow: ``app.workflow``.
            input: The input of every run; validated now against the workflow's schema.
            cron: A five-field cron expression, evaluated in ``timezone``.
            every: Or an interval in whole seconds (at least 1).
            timezone: An IANA time zone name for ``cron`` (default UTC).

        Raises:
            ValidationFailed: A field is invalid (bad cron, unknown time zone, bad input...).
            WorkflowNotFound: No loaded or published workflow has this name.
            ScheduleExists: The id is taken.
        """
        interval = check_spec(schedule_id, cron, every, timezone)
        _, normalized = await self._validated_input(workflow, input)
        return await schedules.create(
            self.db,
            schedules.NewSchedule(
                id=schedule_id,
                workflow=workflow,
                cron=cron,
                interval_s=interval,
                timezone=timezone,
                input=normalized,
                first_fire_at=first_fire(cron, interval, timezone, time.time()),
            ),
        )

    async def schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by id."""
        return await schedules.list_all(self.db)

    async def get_schedule(self, schedule_id: str) -> ScheduleRecord:
        """One schedule.

        Raises:
            ScheduleNotFound: No such schedule.
        """
        found = await schedules.get(self.db, schedule_id)
        if found is None:
            raise errors.ScheduleNotFound(schedule_id)
        return found

    async def delete_schedule(self, schedule_id: str) -> None:
        """Remove a schedule; the runs it started are kept.

        Raises:
            ScheduleNotFound: No such schedule.
        """
        await schedules.delete_one(self.db, schedule_id)

    @property
    def db(self) -> Database:
        """The open database.

        Raises:
            DatabaseClosed: The engine is not open.
        """
        if self._db is None:
            raise errors.DatabaseClosed("The engine is not open: use `async with Engine(...)`.")
        return self._db

    @property
    def worker(self) -> Worker | None:
        """This engine's worker, if it runs one."""
        return self._worker

    # -- starting ------------------------------------------------------------------------

    async def start(
        self, workflow: str, input: Any = None, *, idempotency_key: str | None = None
    ) -> Run:
        """Start a run of ``workflow`` with ``input``; return at once, without waiting for it.

        With an idempotency key, a second start with the same key and input returns the
        first run instead of starting another.

        Args:
            workflow: ``app.workflow``.
            input: The run's input; validated against the workflow's input schema.
            idempotency_key: Up to 255 printable characters.

        Returns:
            The run: ``queued``, or ``running`` when this engine's worker took it at once;
            with a reused idempotency key, the earlier run as it is now.

        Raises:
            WorkflowNotFound: No loaded or published workflow has this name.
            ValidationFailed: The input (or key) is invalid; nothing was stored.
            IdempotencyConflict: The key started a run with a different input.
        """
        if idempotency_key is not None:
            _check_idempotency_key(idempotency_key)
        version, normalized = await self._validated_input(workflow, input)
        new = runs_store.NewRun(
            id=self._ids.new(),
            workflow=workflow,
            definition_version=version,
            input=normalized,
            input_hash=validation.canonical_hash(normalized),
            idempotency_key=idempotency_key,
            lease_ttl_s=self.settings.lease_ttl_s,
        )
        run, created = await self._claiming(
            workflow,
            version,
            lambda claim_for: runs_store.insert(self.db, replace(new, claim_for=claim_for)),
            lambda r: r,
        )
        if created and run.status is RunStatus.QUEUED and self._worker is not None:
            self._worker.wake()
        if created:
            self.notifier.notify(run.id, run)
        return run

    async def _validated_input(self, workflow: str, input: Any) -> tuple[str, Any]:
        """The workflow's current version, and ``input`` validated (and normalized) for it."""
        if input is None:
            input = {}
        validation.check_json(input, what="input")
        loaded = self.registry.get(workflow)
        if loaded is not None:
            normalized = loaded.validate_input(input)
            return loaded.version, normalized
        record = await self._published(workflow)
        validation.validate_with_schema(input, record.input_schema, what="input")
        return record.version, input

    async def _published(self, workflow: str) -> WorkflowRecord:
        known = {w.name: w for w in await catalog.latest(self.db)}
        if workflow not in known:
            raise errors.WorkflowNotFound(workflow, sorted({*known, *self.registry.names()}))
        return known[workflow]

    # -- reading -------------------------------------------------------------------------

    async def get(self, run_id: str) -> Run:
        """The run with this id.

        Raises:
            RunNotFound: No such run (also for ids that are not UUIDs).
        """
        run = await runs_store.get(self.db, _parse_run_id(run_id))
        if run is None:
            raise errors.RunNotFound(run_id)
        return run

    async def wait(self, run_id: str, *, timeout: float | None = None) -> Run:
        """Wait until the run is no longer queued or running, or until ``timeout`` seconds.

        Returns:
            The run as it is then (still ``running`` if the timeout came first).

        Raises:
            RunNotFound: No such run.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        run_id = _parse_run_id(run_id)
        # First look: a run this process keeps in flight needs no read (it is waited on
        # anyway); every later look reads, since another process may have moved the run.
        known = self.notifier.in_flight(run_id)
        with self.notifier.listen(run_id) as listener:
            while True:
                run = listener.take() or known or await self.get(run_id)
                cached, known = run is known, None
                if run.status not in IN_FLIGHT:
                    return run
                pause = self.settings.poll_interval_s
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        # Never answer from the in-process view alone: it may be stale.
                        return await self.get(run_id) if cached else run
                    pause = min(pause, remaining)
                await wait_for_event(listener.changed, pause)

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
        """A page of runs, newest first; pass ``page.next_cursor`` for the next one.

        Raises:
            ValidationFailed: A status is unknown, or the limit or cursor is invalid.
        """
        wanted: list[str | RunStatus]
        if status is None:
            wanted = []
        elif isinstance(status, str):
            wanted = [status]
        else:
            wanted = list(status)
        try:
            statuses = [RunStatus(s) for s in wanted]
        except ValueError as exc:
            raise errors.ValidationFailed(
                "status", [{"pointer": "/status", "message": str(exc)}]
            ) from exc
        return await runs_store.list_page(
            self.db,
            statuses=statuses,
            workflow=workflow,
            created_after=_timestamp(created_after),
            created_before=_timestamp(created_before),
            limit=limit,
            cursor=cursor,
        )

    async def events(self, run_id: str, *, after_id: int = 0) -> list[EventRecord]:
        """The run's events (status changes, finished nodes) after ``after_id``, oldest first."""
        return await events.list_for_run(self.db, _parse_run_id(run_id), after_id=after_id)

    async def watch(
        self, run_id: str, *, after_id: int = 0, until_finished: bool = False
    ) -> AsyncIterator[EventRecord]:
        """Yield the run's events after ``after_id`` as they happen.

        Stops when the run waits or ends; with ``until_finished``, only when it ends
        (a waiting or paused run is followed through its resume).

        Raises:
            RunNotFound: No such run.
        """
        run_id = _parse_run_id(run_id)
        last = after_id
        with self.notifier.listen(run_id, progress=True) as listener:
            while True:
                listener.changed.clear()
                run = await self.get(run_id)
                for event in await self.events(run_id, after_id=last):
                    last = event.id
                    yield event
                if run.status.terminal or (not until_finished and run.status not in IN_FLIGHT):
                    return
                await wait_for_event(listener.changed, self.settings.poll_interval_s)

    async def history(self, run_id: str, *, limit: int = 100) -> list[CheckpointRecord]:
        """The run's checkpoints, newest first: what each step wrote and the state after it.

        Raises:
            RunNotFound: No such run.
        """
        run = await self.get(run_id)
        config: Any = {"configurable": {"thread_id": run.id, "checkpoint_ns": ""}}
        graph = self._graphs.get(run.workflow)
        if graph is None:
            return [
                CheckpointRecord(
                    id=t.checkpoint["id"],
                    step=int(t.metadata.get("step", -1)),
                    nodes=(),
                    next=(),
                    created_at=_iso(t.checkpoint.get("ts")),
                    state=jsonable(
                        {
                            k: v
                            for k, v in t.checkpoint["channel_values"].items()
                            if not k.startswith(("branch:", "__"))
                        }
                    ),
                )
                async for t in self.checkpointer.alist(config, limit=limit)
            ]
        snapshots = [s async for s in graph.aget_state_history(config, limit=limit + 1)]
        return [
            CheckpointRecord(
                id=s.config["configurable"]["checkpoint_id"],
                step=int(s.metadata.get("step", -1)) if s.metadata else -1,
                nodes=tuple(snapshots[i + 1].next) if i + 1 < len(snapshots) else (),
                next=tuple(s.next),
                created_at=_iso(s.created_at),
                state=jsonable(s.values),
            )
            for i, s in enumerate(snapshots[:limit])
        ]

    async def workflows(self) -> list[WorkflowRecord]:
        """The newest published version of every workflow in the catalog, by name."""
        return sorted(await catalog.latest(self.db), key=lambda w: w.name)

    async def published(self, name: str) -> WorkflowRecord:
        """The newest published version of one workflow.

        Raises:
            WorkflowNotFound: No worker published a workflow of this name.
        """
        return await self._published(name)

    async def drained(self) -> None:
        """Return once no run of the loaded versions is queued or running (checked twice).

        A worker kept for an old version (``graphrun worker --drain``) ends then; the engine
        that keeps it starts it again when one of its runs is queued.
        """
        versions = {wf.version for wf in self.registry}
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(self.apps.interval_s)
            busy = [
                u
                for u in await apps_store.unfinished(self.db, self.registry.names())
                if u.definition_version in versions
                and (u.counts.get("queued", 0) or u.counts.get("running", 0))
            ]
            quiet = 0 if busy or (self._worker and self._worker.active_runs) else quiet + 1

    async def install_app(self, path: str | Path) -> InstallResult:
        """Validate an app's dependencies and build the environment its worker runs on.

        Nothing is ever installed at run time: this is the one way an app's packages get
        installed, by an operator (``graphrun apps install``, or admin scope over HTTP).
        The lock (each package's version and sha256) is recorded in the database; a second
        machine installing the same app version gets exactly those files.

        Raises:
            RequirementRejected: A dependency spec breaks the rules (no subprocess started).
            InstallFailed: Building the environment failed; the previous one is untouched.
        """
        return await self.apps.install(self.db, Path(path))

    async def app_overview(self) -> list[AppOverview]:
        """Every app the database knows: its status, versions, and unfinished runs per version."""
        statuses = {s.name: s for s in await apps_store.statuses(self.db)}
        stored = await apps_store.versions(self.db)
        unfinished = await apps_store.unfinished(self.db)
        names = sorted({*statuses, *(v.app for v in stored)})
        overview = []
        for name in names:
            status = statuses.get(name)
            versions = []
            for v in (v for v in stored if v.app == name):
                runs_by_workflow = {
                    u.workflow: u.total
                    for u in unfinished
                    if u.app == name and u.app_version == v.version
                }
                versions.append(
                    {
                        "version": v.version,
                        "created_at": v.created_at.isoformat(),
                        "dependencies": v.dependencies,
                        "installed_at": v.installed_at.isoformat() if v.installed_at else None,
                        "lock": v.lock,
                        "unfinished_runs": sum(runs_by_workflow.values()),
                        "unfinished_by_workflow": runs_by_workflow,
                        "current": status is not None and status.version == v.version,
                    }
                )
            overview.append(
                AppOverview(
                    name=name,
                    status=status.status if status else "unknown",
                    version=status.version if status else None,
                    error=status.error if status else None,
                    updated_at=status.updated_at if status else None,
                    versions=versions,
                )
            )
        return overview

    async def retention_stats(self) -> retention.RetentionStats:
        """Runs by status and age, what they hold, and what the next purge would delete."""
        return await retention.stats(self.db, self.settings.retention)

    async def purge(
        self, *, dry_run: bool = False, batch_size: int = retention.DEFAULT_BATCH
    ) -> retention.PurgeReport:
        """Delete the finished runs the retention policy ages out, with all that is theirs.

        In batches of ``batch_size`` runs, each its own short transaction; a queued, running,
        waiting or paused run is never touched. Then, if the policy has
        ``keep_last_checkpoint_after``, old completed runs keep only their last checkpoint.
        With ``dry_run``, only count what the purge deletes.
        """
        report = await retention.purge(
            self.db, self.settings.retention, dry_run=dry_run, batch_size=batch_size
        )
        if not dry_run and (report.rows["runs"] or report.compacted_runs):
            logger.info("purged %s", report.to_json(), extra={"action": "purge"})
        return report

    async def _purge_loop(self) -> None:
        """Purge what the policy ages out now and then (every worker; one at a time on PG)."""
        while True:
            await asyncio.sleep(self.settings.purge_interval_s)
            try:
                await self.purge()
            except Exception as exc:  # the next round tries again
                logger.warning(
                    "purge failed: %s",
                    exc,
                    exc_info=not isinstance(exc, errors.StorageError),
                    extra={"action": "purge_failed"},
                )

    async def check_ready(self) -> None:
        """Raise unless the database answers and its schema is current.

        Raises:
            StorageError: The database does not answer (or `MigrationRequired`).
        """
        await migrations.check_current(self.db)

    @property
    def api_keys(self) -> ApiKeys:
        """The API keys stored in this engine's database."""
        return ApiKeys(self.db)

    def workflow(self, name: str) -> LoadedWorkflow | None:
        """The loaded workflow with this name, if this engine loaded it."""
        return self.registry.get(name)

    # -- steering ------------------------------------------------------------------------

    async def resume(
        self, run_id: str, value: Any = None, *, interrupt_id: str | None = None
    ) -> Run:
        """Answer a waiting run's interrupt and queue it to continue.

        The value is validated against the interrupt's schema first; an invalid value, or a
        lost race with another resume, changes nothing.

        Args:
            run_id: The waiting run.
            value: The answer (JSON).
            interrupt_id: Which interrupt to answer; needed only when several are pending.

        A ``paused`` run is resumed too (without a value): it continues from the step
        boundary where it stopped.

        Returns:
            The run, now ``queued``.

        Raises:
            RunNotFound: No such run.
            TransitionConflict: The run is neither waiting for input nor paused, or another
                change won the race.
            StaleInterrupt: The run does not wait on ``interrupt_id``.
            ValidationFailed: The value fails the interrupt's schema.
        """
        run = await self.get(run_id)
        if run.status is RunStatus.PAUSED:
            if value is not None or interrupt_id is not None:
                raise errors.ValidationFailed(
                    "resume",
                    [{"pointer": "/value", "message": "a paused run is resumed without a value"}],
                )
            return await self._requeue(
                run, action="resume", allowed=(RunStatus.PAUSED,), values={"pause_requested": False}
            )
        if run.status is not RunStatus.WAITING:
            raise errors.TransitionConflict(run.id, "resume", run.status.value)
        if interrupt_id is None:
            if len(run.waiting_for) != 1:
                raise errors.ValidationFailed(
                    "resume",
                    [
                        {
                            "pointer": "/interrupt_id",
                            "message": f"the run waits on {len(run.waiting_for)} interrupts; name one",
                        }
                    ],
                )
            pending = run.waiting_for[0]
        else:
            matching = [w for w in run.waiting_for if w.id == interrupt_id]
            if not matching:
                raise errors.StaleInterrupt(
                    f"Run {run.id} does not wait on interrupt {interrupt_id!r}.",
                    run_id=run.id,
                    interrupt_id=interrupt_id,
                )
            pending = matching[0]
        if pending.kind is not WaitKind.INPUT:
            raise errors.TransitionConflict(
                run.id,
                "resume",
                run.status.value,
                _not_input(pending),
            )
        validation.check_json(value, what="resume value")
        validation.validate_with_schema(value, pending.schema, what="resume value")
        return await self._requeue(
            run,
            action="resume",
            allowed=(RunStatus.WAITING,),
            values={"resume": {pending.id: value}, "waiting_for": None},
            extra_events=[("resume", {"interrupt_id": pending.id})],
        )

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run: at once unless it is running; a running one stops its current step.

        Returns:
            The run: ``cancelled``, or ``running`` with ``cancel_requested`` set.

        Raises:
            RunNotFound: No such run.
            TransitionConflict: The run already ended.
        """
        return await self._stop_or_request(
            run_id,
            action="cancel",
            stoppable=(RunStatus.QUEUED, RunStatus.WAITING, RunStatus.PAUSED),
            stopped={"status": RunStatus.CANCELLED, "resume": None},
            request="cancel_requested",
            tell_worker=lambda worker, rid: worker.stop_run(rid, "cancel"),
        )

    async def pause(self, run_id: str) -> Run:
        """Pause a run: a queued one at once, a running one at its next step boundary.

        A running run finishes its current step (and checkpoints it), then becomes
        ``paused``; `resume` continues it from there.

        Returns:
            The run: ``paused``, or ``running`` with ``pause_requested`` set.

        Raises:
            RunNotFound: No such run.
            TransitionConflict: The run is waiting, paused or has ended.
        """
        return await self._stop_or_request(
            run_id,
            action="pause",
            stoppable=(RunStatus.QUEUED,),
            # A pause still asked of a released run is answered by this one.
            stopped={"status": RunStatus.PAUSED, "pause_requested": False},
            request="pause_requested",
            tell_worker=lambda worker, rid: worker.pause_run(rid),
        )

    async def _stop_or_request(
        self,
        run_id: str,
        *,
        action: str,
        stoppable: tuple[RunStatus, ...],
        stopped: dict[str, Any],
        request: str,
        tell_worker: Callable[[Worker, str], object],
    ) -> Run:
        """Change a run that is not executing at once; ask an executing one to stop.

        ``stopped`` is the change for a run in ``stoppable``; a running run gets its
        ``request`` flag set (its worker reads it at its next heartbeat, or at once here).
        A run that moves meanwhile (queued to running, say) is looked at again.
        """
        run = await self.get(run_id)
        for _ in range(CAS_RETRIES):
            try:
                if run.status is RunStatus.RUNNING:
                    changed = await runs_store.transition(
                        self.db,
                        run.id,
                        action=action,
                        allowed=(RunStatus.RUNNING,),
                        values={request: True},
                        seen_version=run.version,
                        extra_events=[(request, {})],
                    )
                    if self._worker is not None:
                        tell_worker(self._worker, run.id)
                else:
                    changed = await runs_store.transition(
                        self.db,
                        run.id,
                        action=action,
                        allowed=stoppable,
                        values=stopped,
                        seen_version=run.version,
                    )
            except errors.TransitionConflict as exc:
                if RunStatus(exc.status) not in (*stoppable, RunStatus.RUNNING):
                    raise
                run = await self.get(run_id)  # it moved (e.g. queued -> running): look again
                continue
            self._changed(changed)
            return changed
        raise errors.TransitionConflict(run.id, action, run.status.value, "It keeps changing.")

    async def signal(self, run_id: str, name: str, payload: Any = None) -> SignalSent:
        """Send the signal ``name`` to a run: a wait for it consumes it, now or later.

        The signal is durable: a run that does not wait for it yet keeps it in its mailbox,
        and its first `wait_for_signal(name)` consumes it. Each signal is consumed once, in
        the order sent.

        Returns:
            The stored signal, the run after it, and whether a wait consumed it at once.

        Raises:
            RunNotFound: No such run.
            TransitionConflict: The run has ended; nothing was stored.
            ValidationFailed: The workflow does not declare this signal, or the payload
                fails its schema (or the waiting node's); nothing was stored.
            SignalQueueFull: The run's mailbox is at its limit; nothing was stored.
        """
        run = await self.get(run_id)
        if run.status is RunStatus.WAITING:  # delivering would queue it on its version
            await self._check_servable(run)
        declared = await self._declared_signals(run.workflow, run.definition_version)
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise errors.ValidationFailed(
                "signal",
                [
                    {
                        "pointer": "/name",
                        "message": f"workflow {run.workflow} does not declare a signal "
                        f"{name!r} (it declares: {known})",
                    }
                ],
            )
        validation.check_json(payload, what="signal payload")
        validation.validate_with_schema(payload, declared[name], what="signal payload")

        def check(wait: WaitingOn, value: Any) -> None:
            validation.validate_with_schema(value, wait.schema, what="signal payload")

        async def write(claim_for: str | None) -> tuple[SignalSent, bool]:
            sent = await signals.send(
                self.db,
                run.id,
                name,
                payload,
                max_queued=self.settings.signal_queue_limit,
                check=check,
                claim_for=claim_for,
                lease_ttl_s=self.settings.lease_ttl_s,
            )
            return sent, sent.delivered

        sent, _ = await self._claiming(run.workflow, run.definition_version, write, lambda s: s.run)
        self._changed(sent.run)
        return sent

    async def signals(self, run_id: str) -> list[SignalRecord]:
        """The run's signals, consumed or waiting in its mailbox, in the order sent.

        Raises:
            RunNotFound: No such run.
        """
        run = await self.get(run_id)
        return await signals.list_for_run(self.db, run.id)

    async def _declared_signals(self, workflow: str, version: str) -> dict[str, Any]:
        """The signals the run's own version declares (an old run keeps its version's)."""
        loaded = self.registry.get(workflow)
        if loaded is not None and loaded.version == version:
            return loaded.signals
        record = await catalog.get(self.db, workflow, version)
        if record is not None:
            return record.signals
        return (await self._published(workflow)).signals

    async def fork(self, run_id: str, checkpoint_id: str | None = None, update: Any = None) -> Run:
        """Start a new run from a checkpoint of another, optionally with a state patch.

        Time travel with edits: the new run gets the source's history up to the checkpoint,
        the patch is applied as LangGraph's ``update_state`` (through the state's reducers,
        as if the node that wrote the checkpoint had returned it), and the run continues
        from there. The source run is not touched.

        Args:
            run_id: The run to fork (in any status).
            checkpoint_id: One of its checkpoints (see `history`); its latest by default.
            update: A state patch (JSON), applied before the new run continues.

        Returns:
            The new run, ``queued`` (or ``running`` when this engine's worker took it).

        Raises:
            RunNotFound: No such run.
            CheckpointNotFound: The run has no such checkpoint.
            WorkflowNotFound: ``update`` needs the workflow loaded in this engine.
            ValidationFailed: The update is not JSON or does not fit the state.
        """
        source = await self.get(run_id)
        if update is not None:
            validation.check_json(update, what="update")
        graph = self._graphs.get(source.workflow)
        if update is not None and graph is None:
            raise errors.WorkflowNotFound(source.workflow, self.registry.names())
        config: Any = {"configurable": {"thread_id": source.id, "checkpoint_ns": ""}}
        if checkpoint_id is not None:
            found = await self.checkpointer.aget_tuple(
                {"configurable": {**config["configurable"], "checkpoint_id": checkpoint_id}}
            )
            if found is None:
                raise errors.CheckpointNotFound(source.id, checkpoint_id)
        start_from = checkpoint_id or source.checkpoint_id
        new_id = self._ids.new()
        if start_from is not None:
            await self.checkpointer.copy_until(source.id, new_id, start_from)
        try:
            if update is not None and graph is not None:
                target: Any = {"configurable": {"thread_id": new_id, "checkpoint_ns": ""}}
                try:
                    updated = await graph.aupdate_state(target, update)
                except (InvalidUpdateError, ValueError, TypeError, KeyError) as exc:
                    raise errors.ValidationFailed(
                        "update", [{"pointer": "/update", "message": str(exc)}]
                    ) from exc
                start_from = updated["configurable"]["checkpoint_id"]
            new = runs_store.NewRun(
                id=new_id,
                workflow=source.workflow,
                definition_version=source.definition_version,
                input=source.input,
                input_hash=source.input_hash,
                lease_ttl_s=self.settings.lease_ttl_s,
                checkpoint_id=start_from,
                forked_from=source.id,
            )
            run, _ = await self._claiming(
                source.workflow,
                source.definition_version,
                lambda claim_for: runs_store.insert(self.db, replace(new, claim_for=claim_for)),
                lambda r: r,
            )
        except Exception:
            # Leave no orphaned history. (A cancelled caller leaves it: the insert is
            # shielded and may have committed, and then the new run needs it.)
            await self.checkpointer.adelete_thread(new_id)
            raise
        self._changed(run)
        return run

    async def retry(self, run_id: str) -> Run:
        """Queue a failed run again; it continues from the step that failed.

        Raises:
            RunNotFound: No such run.
            TransitionConflict: The run is not failed.
        """
        run = await self.get(run_id)
        return await self._requeue(
            run,
            action="retry",
            allowed=(RunStatus.FAILED,),
            values={"error": None, "finished_at": None},
        )

    async def _requeue(
        self,
        run: Run,
        *,
        action: str,
        allowed: tuple[RunStatus, ...],
        values: dict[str, Any],
        extra_events: Collection[tuple[str, dict[str, Any]]] = (),
    ) -> Run:
        """Queue ``run`` again; a local worker with room claims it in the same transaction."""
        await self._check_servable(run)

        async def write(claim_for: str | None) -> tuple[Run, bool]:
            changed = await runs_store.transition(
                self.db,
                run.id,
                action=action,
                allowed=allowed,
                values={**values, "status": RunStatus.QUEUED},
                seen_version=run.version,
                extra_events=extra_events,
                claim_for=claim_for,
                lease_ttl_s=self.settings.lease_ttl_s,
            )
            return changed, True

        changed, _ = await self._claiming(run.workflow, run.definition_version, write, lambda r: r)
        self._changed(changed)
        return changed

    async def _check_servable(self, run: Run) -> None:
        loaded = self.registry.get(run.workflow)
        await self.apps.check_servable(self.db, run, loaded.version if loaded else None)

    async def _claiming(
        self,
        workflow: str,
        version: str,
        write: Callable[[str | None], Awaitable[tuple[T, bool]]],
        run_of: Callable[[T], Run],
    ) -> tuple[T, bool]:
        """Make a write that a local worker with room claims the run in (no claim round trip).

        ``write(claim_for)`` returns a result (``run_of`` finds the run in it) and whether
        the run changed. The worker adopts what
        the write claimed even when the caller is cancelled meanwhile: the write commits
        regardless, and a claimed run nobody executes would sit until its lease expired.
        """
        worker = self._worker
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

    def _changed(self, run: Run) -> None:
        self.notifier.notify(run.id, run)
        if run.status is RunStatus.QUEUED and self._worker is not None:
            self._worker.wake()


def _not_input(wait: WaitingOn) -> str:
    if wait.kind is WaitKind.SIGNAL:
        return f"It waits for the signal {wait.name!r}: send it with signal()."
    if wait.kind is WaitKind.WORKFLOW:
        return "It waits for its child run to end, which continues it on its own."
    return "It sleeps on a timer, which wakes it on its own."


def _iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


#: 1-255 characters, none of them a control character (C0, DEL or C1).
IDEMPOTENCY_KEY_RE = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,255}")


def _check_idempotency_key(key: str) -> None:
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise errors.ValidationFailed(
            "idempotency key",
            [
                {
                    "pointer": "/idempotency_key",
                    "message": "must be 1-255 characters, no control characters",
                }
            ],
        )
