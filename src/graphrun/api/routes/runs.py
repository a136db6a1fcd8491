"""``/runs``: start, list, read and steer runs.

Signals, pause and fork are further ``POST /runs/{run_id}/<action>`` routes on this router.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import AwareDatetime, BeforeValidator

from graphrun import errors
from graphrun.api.auth import require
from graphrun.api.models import (
    BODY_ERRORS,
    COMMON_ERRORS,
    WORKFLOW_NAME,
    ForkIn,
    HistoryOut,
    ResumeIn,
    RunOut,
    RunPageOut,
    SignalIn,
    SignalListOut,
    SignalSentOut,
    StartRunIn,
    error_responses,
)
from graphrun.engine import Engine
from graphrun.engine.keys import Scope
from graphrun.storage.records import Run, RunStatus

from ._params import EngineDep, RunId

#: Start body fields whose problems `ValidationFailed` reports relative to the field.
BODY_FIELDS = frozenset({"input", "config", "context"})

__all__ = (
    "cancel_run",
    "fork_run",
    "get_run",
    "list_runs",
    "pause_run",
    "resume_run",
    "retry_run",
    "router",
    "run_history",
    "run_signals",
    "signal_run",
    "start_run",
)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_only(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("an ISO 8601 date-time with a UTC offset, e.g. 2026-11-26T10:00:00Z")
    return value


#: An ISO 8601 date-time with its offset (not a bare number, not a naive time).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_only)]

router = APIRouter(prefix="/runs", tags=["runs"], responses=error_responses(*COMMON_ERRORS))
reader = [Depends(require(Scope.READ))]
#: OpenAPI links: what a client (or a fuzzer's stateful phase) can do with a started run.
RUN_LINKS = {
    op: {"operationId": op, "parameters": {"run_id": "$response.body#/id"}}
    for op in (
        "get_run",
        "run_history",
        "run_events",
        "run_signals",
        "resume_run",
        "signal_run",
        "pause_run",
        "cancel_run",
        "retry_run",
        "fork_run",
    )
}
writer = [Depends(require(Scope.WRITE))]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    dependencies=writer,
    responses={**error_responses(*BODY_ERRORS, 404, 409), 202: {"links": RUN_LINKS}},
    operation_id="start_run",
)
async def start_run(body: StartRunIn, engine: EngineDep) -> dict[str, Any]:
    """Start a run; answers at once (202) without waiting for any step.

    With ``idempotency_key``, a repeated start with the same input returns the first run;
    with a different input it is refused (409 ``idempotency_key_reused``).
    """
    try:
        run = await engine.start(
            body.workflow,
            body.input,
            idempotency_key=body.idempotency_key,
            config=body.config,
            context=body.context,
        )
    except errors.ValidationFailed as exc:
        raise exc.within(exc.what) if exc.what in BODY_FIELDS else exc from None
    return run.to_json()


@router.get("", response_model=RunPageOut, dependencies=reader, operation_id="list_runs")
async def list_runs(
    engine: EngineDep,
    status: Annotated[list[RunStatus] | None, Query(description="Any of these.")] = None,
    workflow: Annotated[str | None, Query(pattern=WORKFLOW_NAME)] = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """A page of runs, newest first, filtered by status, workflow and creation time."""
    page = await engine.list_runs(
        status=status or None,
        workflow=workflow,
        created_after=created_after,
        created_before=created_before,
        limit=limit,
        cursor=cursor,
    )
    return {"runs": [r.to_json() for r in page.runs], "next_cursor": page.next_cursor}


@router.get(
    "/{run_id}",
    response_model=RunOut,
    dependencies=reader,
    responses=error_responses(404),
    operation_id="get_run",
)
async def get_run(
    request: Request,
    run_id: RunId,
    engine: EngineDep,
    wait: Annotated[
        float | None,
        Query(ge=0, le=60, description="Seconds to wait for the run to leave queued/running."),
    ] = None,
) -> dict[str, Any]:
    """The run; with ``wait``, answered when it waits or ends (or when ``wait`` runs out)."""
    if wait:
        return (await _wait(engine, str(run_id), wait, request.app.state.shutdown)).to_json()
    return (await engine.get(str(run_id))).to_json()


async def _wait(engine: Engine, run_id: str, timeout: float, shutdown: asyncio.Event) -> Run:
    """`Engine.wait`, cut short when the server shuts down (the run as it is then)."""
    waiting = asyncio.ensure_future(engine.wait(run_id, timeout=timeout))
    stopping = asyncio.ensure_future(shutdown.wait())
    try:
        await asyncio.wait([waiting, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not waiting.done():
            waiting.cancel()
    if waiting.done() and not waiting.cancelled():
        return waiting.result()
    return await engine.get(run_id)


@router.post(
    "/{run_id}/resume",
    response_model=RunOut,
    dependencies=writer,
    responses=error_responses(*BODY_ERRORS, 404, 409),
    operation_id="resume_run",
)
async def resume_run(run_id: RunId, body: ResumeIn, engine: EngineDep) -> dict[str, Any]:
    """Answer the waiting run's interrupt, or resume a paused run; it is queued to continue.

    A paused run is resumed without a ``value`` (and without ``interrupt_id``); it continues
    from the step boundary where it stopped.
    """
    try:
        run = await engine.resume(
            str(run_id), body.value, interrupt_id=body.interrupt_id, answers=body.answers
        )
    except errors.ValidationFailed as exc:
        raise exc.within("value") if exc.what == "resume value" else exc from None
    return run.to_json()


@router.post(
    "/{run_id}/signals",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignalSentOut,
    dependencies=writer,
    responses=error_responses(*BODY_ERRORS, 404, 409),
    operation_id="signal_run",
)
async def signal_run(run_id: RunId, body: SignalIn, engine: EngineDep) -> dict[str, Any]:
    """Send a signal; a wait for it consumes it at once (``delivered``) or later, in order.

    The signal is stored durably in the run's mailbox. The name must be one the workflow
    declares and the payload must satisfy its schema (422, nothing stored); a run that has
    ended refuses it (409), and so does a full mailbox (409 ``signal_queue_full``).
    """
    try:
        sent = await engine.signal(str(run_id), body.name, body.payload)
    except errors.ValidationFailed as exc:
        raise exc.within("payload") if exc.what == "signal payload" else exc from None
    return sent.to_json()


@router.get(
    "/{run_id}/signals",
    response_model=SignalListOut,
    dependencies=reader,
    responses=error_responses(404),
    operation_id="run_signals",
)
async def run_signals(run_id: RunId, engine: EngineDep) -> dict[str, Any]:
    """The run's signals, consumed or still waiting in its mailbox, in the order sent."""
    return {"signals": [s.to_json() for s in await engine.runs.signals(str(run_id))]}


@router.post(
    "/{run_id}/pause",
    response_model=RunOut,
    dependencies=writer,
    responses=error_responses(404, 409),
    operation_id="pause_run",
)
async def pause_run(run_id: RunId, engine: EngineDep) -> dict[str, Any]:
    """Pause the run: a queued one at once, a running one at its next step boundary.

    A running run answers still ``running`` (it pauses once its current step is
    checkpointed); ``POST /runs/{run_id}/resume`` continues a paused run.
    """
    return (await engine.pause(str(run_id))).to_json()


@router.post(
    "/{run_id}/cancel",
    response_model=RunOut,
    dependencies=writer,
    responses=error_responses(*BODY_ERRORS, 404, 409),
    operation_id="cancel_run",
)
async def cancel_run(run_id: RunId, engine: EngineDep) -> dict[str, Any]:
    """Cancel the run: at once unless running; a running run stops at its current step."""
    return (await engine.cancel(str(run_id))).to_json()


@router.post(
    "/{run_id}/retry",
    response_model=RunOut,
    dependencies=writer,
    responses=error_responses(*BODY_ERRORS, 404, 409),
    operation_id="retry_run",
)
async def retry_run(run_id: RunId, engine: EngineDep) -> dict[str, Any]:
    """Queue a failed run again; it continues from the step that failed."""
    return (await engine.retry(str(run_id))).to_json()


@router.post(
    "/{run_id}/fork",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    dependencies=writer,
    responses={**error_responses(*BODY_ERRORS, 404), 202: {"links": RUN_LINKS}},
    operation_id="fork_run",
)
async def fork_run(run_id: RunId, engine: EngineDep, body: ForkIn | None = None) -> dict[str, Any]:
    """Start a new run from a checkpoint of this one (its latest by default); 202 at once.

    ``update`` patches the state first, as if the checkpoint's node had returned it. The
    source run is not changed; the new run's ``forked_from`` names it.
    """
    body = body or ForkIn()
    # No `within` here: the engine's pointer for an update that does not fit is `/update`
    # already, and whatever `check_json` refuses the body check refused first.
    run = await engine.fork(str(run_id), body.checkpoint_id, body.update)
    return run.to_json()


@router.get(
    "/{run_id}/history",
    response_model=HistoryOut,
    dependencies=reader,
    responses=error_responses(404),
    operation_id="run_history",
)
async def run_history(
    run_id: RunId,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The run's checkpoints, newest first: the node that wrote each and the state after it."""
    history = await engine.runs.history(str(run_id), limit=limit)
    return {"checkpoints": [c.to_json() for c in history]}
