"""Runs: start them, read them, wait on them and steer them (`engine.runs`).

Every verb is validated before anything is stored and ends in one compare-and-set
(`storage/runs.py`); a run started, resumed or retried here is claimed in that same
transaction when this engine's worker serves it and has room.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from langgraph.errors import InvalidUpdateError

from graphrun import errors, validation
from graphrun.state_json import state_json
from graphrun.storage import catalog, events, lifecycle, signals
from graphrun.storage import runs as runs_store
from graphrun.storage.records import (
    CheckpointRecord,
    EventRecord,
    Run,
    RunPage,
    RunStatus,
    SignalRecord,
    SignalSent,
    WaitingOn,
)
from graphrun.storage.runs import Change
from graphrun.waits import WaitKind

from .core import Core, parse_run_id
from .executor import StopReason
from .notifier import IN_FLIGHT, wait_for_event
from .run_config import check_config
from .worker import Worker

__all__ = ("CAS_RETRIES", "IDEMPOTENCY_KEY_RE", "RunService", "start_hash")

CAS_RETRIES = 3  # re-reads when a transition loses only on the version


class RunService:
    """The run verbs of an engine: ``engine.runs`` (the engine keeps the common ones too)."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def start(
        self,
        workflow: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        config: dict[str, Any] | None = None,
        context: Any = None,
    ) -> Run:
        """Start a run of ``workflow`` with ``input``; return at once, without waiting for it.

        With an idempotency key, a second start with the same key, input, config and
        context returns the first run instead of starting another.

        Args:
            workflow: ``app.workflow``.
            input: The run's input, as given to ``graph.invoke``: any subset of the state's
                keys; checked by LangGraph's own input step (and the manifest's model).
            idempotency_key: Up to 255 printable characters.
            config: LangGraph config for every execution of the run: ``configurable``
                values, ``recursion_limit``, ``tags``, ``metadata`` (not ``thread_id`` or
                checkpoint keys: the run is its own thread).
            context: The run's ``Runtime.context``, checked against the graph's
                ``context_schema``.

        Returns:
            The run: ``queued``, or ``running`` when this engine's worker took it at once;
            with a reused idempotency key, the earlier run as it is now.

        Raises:
            WorkflowNotFound: No loaded or published workflow has this name.
            ValidationFailed: The input, config, context (or key) is invalid; nothing was
                stored.
            IdempotencyConflict: The key started a run with a different input, config or
                context.
        """
        if idempotency_key is not None:
            _check_idempotency_key(idempotency_key)
        config = check_config(config)
        if context is not None:
            validation.check_json(context, what="context")
        version, normalized = await self._core.validated_input(
            workflow, input, config=config, context=context
        )
        new = runs_store.NewRun(
            id=self._core.ids.new(),
            workflow=workflow,
            definition_version=version,
            input=normalized,
            input_hash=start_hash(normalized, config, context),
            idempotency_key=idempotency_key,
            lease_ttl_s=self._core.settings.lease_ttl_s,
            config=config,
            context=context,
        )
        run, created = await self._core.claiming(
            workflow,
            version,
            lambda claim_for: lifecycle.insert(self._core.db, replace(new, claim_for=claim_for)),
            lambda r: r,
        )
        if created and run.status is RunStatus.QUEUED and self._core.worker is not None:
            self._core.worker.wake()
        if created:
            self._core.notifier.notify(run.id, run)
        return run

    async def get(self, run_id: str) -> Run:
        """The run with this id.

        Raises:
            RunNotFound: No such run (also for ids that are not UUIDs).
        """
        run = await runs_store.get(self._core.db, parse_run_id(run_id))
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
        run_id = parse_run_id(run_id)
        # First look: a run this process keeps in flight needs no read (it is waited on
        # anyway); every later look reads, since another process may have moved the run.
        known = self._core.notifier.in_flight(run_id)
        with self._core.notifier.listen(run_id) as listener:
            while True:
                run = listener.take() or known or await self.get(run_id)
                cached, known = run is known, None
                if run.status not in IN_FLIGHT:
                    return run
                pause = self._core.settings.poll_interval_s
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
            self._core.db,
            statuses=statuses,
            workflow=workflow,
            created_after=_timestamp(created_after),
            created_before=_timestamp(created_before),
            limit=limit,
            cursor=cursor,
        )

    async def events(self, run_id: str, *, after_id: int = 0) -> list[EventRecord]:
        """The run's events (status changes, finished nodes) after ``after_id``, oldest first."""
        return await events.list_for_run(self._core.db, parse_run_id(run_id), after_id=after_id)

    async def watch(
        self, run_id: str, *, after_id: int = 0, until_finished: bool = False
    ) -> AsyncIterator[EventRecord]:
        """Yield the run's events after ``after_id`` as they happen.

        Stops when the run waits or ends; with ``until_finished``, only when it ends
        (a waiting or paused run is followed through its resume).

        Raises:
            RunNotFound: No such run.
        """
        run_id = parse_run_id(run_id)
        last = after_id
        with self._core.notifier.listen(run_id, progress=True) as listener:
            while True:
                listener.changed.clear()
                run = await self.get(run_id)
                for event in await self.events(run_id, after_id=last):
                    last = event.id
                    yield event
                if run.status.terminal or (not until_finished and run.status not in IN_FLIGHT):
                    return
                await wait_for_event(listener.changed, self._core.settings.poll_interval_s)

    async def history(self, run_id: str, *, limit: int = 100) -> list[CheckpointRecord]:
        """The run's checkpoints, newest first: what each step wrote and the state after it.

        Raises:
            RunNotFound: No such run.
        """
        run = await self.get(run_id)
        config: Any = {"configurable": {"thread_id": run.id, "checkpoint_ns": ""}}
        bound = self._core.graphs.get(run.workflow)
        if bound is None:
            return [
                CheckpointRecord(
                    id=t.checkpoint["id"],
                    step=int(t.metadata.get("step", -1)),
                    nodes=(),
                    next=(),
                    created_at=_iso(t.checkpoint.get("ts")),
                    state=state_json(
                        {
                            k: v
                            for k, v in t.checkpoint["channel_values"].items()
                            if not k.startswith(("branch:", "__"))
                        }
                    ),
                )
                async for t in self._core.saver.alist(config, limit=limit)
            ]
        graph = bound.template
        snapshots = [s async for s in graph.aget_state_history(config, limit=limit + 1)]
        return [
            CheckpointRecord(
                id=s.config["configurable"]["checkpoint_id"],
                step=int(s.metadata.get("step", -1)) if s.metadata else -1,
                nodes=tuple(snapshots[i + 1].next) if i + 1 < len(snapshots) else (),
                next=tuple(s.next),
                created_at=_iso(s.created_at),
                state=state_json(s.values),
            )
            for i, s in enumerate(snapshots[:limit])
        ]

    async def signals(self, run_id: str) -> list[SignalRecord]:
        """The run's signals, consumed or waiting in its mailbox, in the order sent.

        Raises:
            RunNotFound: No such run.
        """
        run = await self.get(run_id)
        return await signals.list_for_run(self._core.db, run.id)

    async def resume(
        self,
        run_id: str,
        value: Any = None,
        *,
        interrupt_id: str | None = None,
        answers: dict[str, Any] | None = None,
    ) -> Run:
        """Answer a waiting run's interrupts and queue it to continue.

        Each value is validated against its interrupt's schema first; an invalid value, or
        a lost race with another resume, changes nothing.

        Args:
            run_id: The waiting run.
            value: The answer (JSON), to its one pending interrupt (or ``interrupt_id``).
            interrupt_id: Which interrupt ``value`` answers; needed when several are pending.
            answers: Several answers at once, ``{interrupt_id: value}``, given in one step as
                LangGraph's ``Command(resume={id: value})`` gives them (instead of ``value``).

        A ``paused`` run is resumed too (without a value): it continues from the step
        boundary where it stopped. A run at a breakpoint (``interrupt_before``/``after``)
        is resumed without a value, too.

        Returns:
            The run, now ``queued``.

        Raises:
            RunNotFound: No such run.
            TransitionConflict: The run is neither waiting for input nor paused, or another
                change won the race.
            StaleInterrupt: The run does not wait on ``interrupt_id`` (or an answer's id).
            ValidationFailed: A value fails its interrupt's schema.
        """
        run = await self.get(run_id)
        if answers is not None and (value is not None or interrupt_id is not None):
            raise errors.ValidationFailed(
                "resume",
                [{"pointer": "/answers", "message": "give either answers or a value, not both"}],
            )
        if run.status is RunStatus.PAUSED:
            if value is not None or interrupt_id is not None or answers:
                raise errors.ValidationFailed(
                    "resume",
                    [{"pointer": "/value", "message": "a paused run is resumed without a value"}],
                )
            return await self._requeue(
                run,
                action="resume",
                allowed=(RunStatus.PAUSED,),
                change=Change(pause_requested=False),
            )
        if run.status is not RunStatus.WAITING:
            raise errors.TransitionConflict(run.id, "resume", run.status.value)
        if answers is None:
            given = {self._pending(run, interrupt_id).id: value}
        else:
            given_as: Any = answers  # a caller's value: the CLI and Python pass anything
            if not isinstance(given_as, dict) or not given_as:
                raise errors.ValidationFailed(
                    "resume",
                    [{"pointer": "/answers", "message": "must name at least one interrupt"}],
                )
            given = {self._pending(run, key).id: v for key, v in answers.items()}
        self._check_answers(run, given, several=answers is not None)
        return await self._requeue(
            run,
            action="resume",
            allowed=(RunStatus.WAITING,),
            change=Change(resume=given, waiting_for=None),
            extra_events=[("resume", {"interrupt_id": key}) for key in given],
        )

    def _check_answers(self, run: Run, given: dict[str, Any], *, several: bool) -> None:
        """Raise unless every answer fits its wait (several: all problems, by pointer)."""
        problems: list[dict[str, str]] = []
        for key, answer in given.items():
            pending = self._pending(run, key)
            if pending.kind is WaitKind.BREAKPOINT and answer is not None:
                where = f"/answers/{_escaped(key)}" if several else "/value"
                raise errors.ValidationFailed(
                    "resume",
                    [{"pointer": where, "message": "a breakpoint is passed without a value"}],
                )
            if pending.kind not in (WaitKind.INPUT, WaitKind.BREAKPOINT):
                raise errors.TransitionConflict(
                    run.id, "resume", run.status.value, _not_input(pending)
                )
            what = f"answer to {key}" if several else "resume value"
            try:
                validation.check_json(answer, what=what)
                validation.validate_with_schema(answer, pending.schema, what=what)
            except errors.ValidationFailed as exc:
                if not several:
                    raise
                problems += exc.within(f"answers/{_escaped(key)}").errors
        if problems:
            raise errors.ValidationFailed("resume", problems)

    def _pending(self, run: Run, interrupt_id: str | None) -> WaitingOn:
        """The wait ``interrupt_id`` names (the only one when None).

        Raises:
            ValidationFailed: No id given while several interrupts are pending.
            StaleInterrupt: The run does not wait on ``interrupt_id``.
        """
        if interrupt_id is None:
            if len(run.waiting_for) != 1:
                raise errors.ValidationFailed(
                    "resume",
                    [
                        {
                            "pointer": "/interrupt_id",
                            "message": f"the run waits on {len(run.waiting_for)} interrupts; "
                            "name one, or answer them all with answers",
                        }
                    ],
                )
            return run.waiting_for[0]
        matching = [w for w in run.waiting_for if w.id == interrupt_id]
        if not matching:
            raise errors.StaleInterrupt(
                f"Run {run.id} does not wait on interrupt {interrupt_id!r}.",
                run_id=run.id,
                interrupt_id=interrupt_id,
            )
        return matching[0]

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
            stopped=Change(status=RunStatus.CANCELLED, resume=None),
            request=Change(cancel_requested=True),
            requested="cancel_requested",
            tell_worker=lambda worker, rid: worker.stop_run(rid, StopReason.CANCEL),
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
            stopped=Change(status=RunStatus.PAUSED, pause_requested=False),
            request=Change(pause_requested=True),
            requested="pause_requested",
            tell_worker=lambda worker, rid: worker.pause_run(rid),
        )

    async def _stop_or_request(
        self,
        run_id: str,
        *,
        action: str,
        stoppable: tuple[RunStatus, ...],
        stopped: Change,
        request: Change,
        requested: str,
        tell_worker: Callable[[Worker, str], object],
    ) -> Run:
        """Change a run that is not executing at once; ask an executing one to stop.

        ``stopped`` is the change for a run in ``stoppable``; a running run gets ``request``
        (its worker reads it at its next heartbeat, or at once here), recorded as the event
        ``requested``.
        A run that moves meanwhile (queued to running, say) is looked at again.
        """
        run = await self.get(run_id)
        for _ in range(CAS_RETRIES):
            try:
                if run.status is RunStatus.RUNNING:
                    changed = await lifecycle.transition(
                        self._core.db,
                        run.id,
                        action=action,
                        allowed=(RunStatus.RUNNING,),
                        change=request,
                        seen_version=run.version,
                        extra_events=[(requested, {})],
                    )
                    if self._core.worker is not None:
                        tell_worker(self._core.worker, run.id)
                else:
                    changed = await lifecycle.transition(
                        self._core.db,
                        run.id,
                        action=action,
                        allowed=stoppable,
                        change=stopped,
                        seen_version=run.version,
                    )
            except errors.TransitionConflict as exc:
                if RunStatus(exc.status) not in (*stoppable, RunStatus.RUNNING):
                    raise
                run = await self.get(run_id)  # it moved (e.g. queued -> running): look again
                continue
            self._core.changed(changed)
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
            await self._core.check_servable(run)
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
            sent = await lifecycle.send(
                self._core.db,
                run.id,
                name,
                payload,
                max_queued=self._core.settings.signal_queue_limit,
                check=check,
                claim_for=claim_for,
                lease_ttl_s=self._core.settings.lease_ttl_s,
            )
            return sent, sent.delivered

        sent, _ = await self._core.claiming(
            run.workflow, run.definition_version, write, lambda s: s.run
        )
        self._core.changed(sent.run)
        return sent

    async def _declared_signals(self, workflow: str, version: str) -> dict[str, Any]:
        """The signals the run's own version declares (an old run keeps its version's)."""
        loaded = self._core.registry.get(workflow)
        if loaded is not None and loaded.version == version:
            return loaded.signals
        record = await catalog.get(self._core.db, workflow, version)
        if record is None:
            record = await self._core.published(workflow)
        signals_of: dict[str, Any] = record.signals
        return signals_of

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
        bound = self._core.graphs.get(source.workflow)
        graph = None if bound is None else bound.template
        if update is not None and graph is None:
            raise errors.WorkflowNotFound(source.workflow, self._core.registry.names())
        config: Any = {"configurable": {"thread_id": source.id, "checkpoint_ns": ""}}
        if checkpoint_id is not None:
            found = await self._core.saver.aget_tuple(
                {"configurable": {**config["configurable"], "checkpoint_id": checkpoint_id}}
            )
            if found is None:
                raise errors.CheckpointNotFound(source.id, checkpoint_id)
        start_from = checkpoint_id or source.checkpoint_id
        new_id = self._core.ids.new()
        if start_from is not None:
            await self._core.saver.copy_until(source.id, new_id, start_from)
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
                config=source.config,
                context=source.context,
                lease_ttl_s=self._core.settings.lease_ttl_s,
                checkpoint_id=start_from,
                forked_from=source.id,
            )
            run, _ = await self._core.claiming(
                source.workflow,
                source.definition_version,
                lambda claim_for: lifecycle.insert(
                    self._core.db, replace(new, claim_for=claim_for)
                ),
                lambda r: r,
            )
        except Exception:
            # Leave no orphaned history. (A cancelled caller leaves it: the insert is
            # shielded and may have committed, and then the new run needs it.)
            await self._core.saver.adelete_thread(new_id)
            raise
        self._core.changed(run)
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
            change=Change(error=None, finished_at=None),
        )

    async def _requeue(
        self,
        run: Run,
        *,
        action: str,
        allowed: tuple[RunStatus, ...],
        change: Change,
        extra_events: Collection[tuple[str, dict[str, Any]]] = (),
    ) -> Run:
        """Queue ``run`` again; a local worker with room claims it in the same transaction."""
        await self._core.check_servable(run)

        async def write(claim_for: str | None) -> tuple[Run, bool]:
            changed = await lifecycle.transition(
                self._core.db,
                run.id,
                action=action,
                allowed=allowed,
                change=replace(change, status=RunStatus.QUEUED),
                seen_version=run.version,
                extra_events=extra_events,
                claim_for=claim_for,
                lease_ttl_s=self._core.settings.lease_ttl_s,
            )
            return changed, True

        changed, _ = await self._core.claiming(
            run.workflow, run.definition_version, write, lambda r: r
        )
        self._core.changed(changed)
        return changed


def _timestamp(value: datetime | float | None) -> float | None:
    if value is None or isinstance(value, float | int):
        return value
    if value.tzinfo is None:
        raise errors.ValidationFailed(
            "time filter", [{"pointer": "", "message": "datetimes must be timezone-aware"}]
        )
    return value.timestamp()


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


def start_hash(input: Any, config: dict[str, Any] | None, context: Any) -> str:
    """What an idempotent start compares: the input, and the config and context when given."""
    if config is None and context is None:
        return validation.canonical_hash(input)  # as before config and context existed
    return validation.canonical_hash({"input": input, "config": config, "context": context})


def _escaped(key: str) -> str:
    return validation.pointer((key,))[1:]
