"""``GET /runs/{run_id}/events``: a run's events as Server-Sent Events, pushed as they happen.

Each event carries its id; a client that reconnects with ``Last-Event-ID`` (browsers do it
on their own) gets exactly the events it missed. The stream ends when the run ends; a
waiting run's stream stays open (with keep-alive comments) until it is resumed or ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from graphrun import errors
from graphrun.api.auth import require
from graphrun.api.authenticate import bearer_token
from graphrun.api.models import COMMON_ERRORS, error_responses
from graphrun.engine.keys import Scope
from graphrun.storage.records import EventRecord, Run

from ._params import EngineDep, existing_run

__all__ = (
    "KEEPALIVE_S",
    "router",
    "run_events",
)

#: Seconds of silence after which a comment line keeps proxies from closing the stream.
KEEPALIVE_S = 15.0

router = APIRouter(tags=["runs"], responses=error_responses(*COMMON_ERRORS, 404))

#: One event on the wire (OpenAPI 3.2 ``itemSchema``): ``data`` is JSON text.
_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "description": "The event id; resume with Last-Event-ID."},
        "event": {"type": "string", "description": "status, node, resume, cancel_requested..."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "JSON: {id, run_id, kind, data, created_at}.",
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}


def _frame(event: EventRecord) -> bytes:
    data = {
        "id": event.id,
        "run_id": event.run_id,
        "kind": event.kind,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream(
    events: AsyncIterator[EventRecord],
    *,
    max_s: float,
    shutdown: asyncio.Event,
    still_allowed: Callable[[], Awaitable[bool]],
) -> AsyncIterator[bytes]:
    """Frames of ``events``, with keep-alives.

    Ends with the run, at ``max_s``, at shutdown, or when the caller's key stops being valid
    (checked every `KEEPALIVE_S`, whether events flow or not).

    Whenever it ends early, the client reconnects with ``Last-Event-ID`` and misses nothing.
    """
    pending: asyncio.Future[EventRecord] | None = None
    stopping: asyncio.Future[Any] = asyncio.ensure_future(shutdown.wait())
    deadline = time.monotonic() + max_s
    next_check = time.monotonic() + KEEPALIVE_S
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            remaining = deadline - time.monotonic()
            if remaining <= 0 or stopping.done():
                return
            done, _ = await asyncio.wait(
                [pending, stopping],
                timeout=min(KEEPALIVE_S, remaining),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if stopping.done():
                return
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + KEEPALIVE_S
                try:
                    if not await still_allowed():
                        return
                except errors.StorageError:
                    return  # the client reconnects (and is checked again) when storage is back
            if pending not in done:
                if time.monotonic() < deadline:
                    yield b": keep-alive\n\n"
                continue
            try:
                event = pending.result()
            except (StopAsyncIteration, errors.StorageError):
                return  # a client that reconnects with Last-Event-ID misses nothing
            pending = None
            yield _frame(event)
    finally:
        stopping.cancel()
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(BaseException):
            await events.aclose()  # type: ignore[attr-defined]


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    dependencies=[Depends(require(Scope.READ))],
    responses={200: {"content": {"text/event-stream": {"itemSchema": _EVENT_SCHEMA}}}},
    operation_id="run_events",
)
async def run_events(
    request: Request,
    run: Annotated[Run, Depends(existing_run)],
    engine: EngineDep,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=18, pattern=r"^\d+$")
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="Send only events after this id.")
    ] = None,
) -> StreamingResponse:
    """Stream the run's status changes and finished nodes, oldest first, as they happen."""
    start = after if after is not None else int(last_event_id or 0)
    events = engine.runs.watch(run.id, after_id=start, until_finished=True)
    token = bearer_token(request.headers)

    async def still_allowed() -> bool:
        if not request.app.state.auth:
            return True
        return token is not None and await engine.keys.verify(token) is not None

    return StreamingResponse(
        _stream(
            events,
            max_s=engine.settings.stream_max_s,
            shutdown=request.app.state.shutdown,
            still_allowed=still_allowed,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
