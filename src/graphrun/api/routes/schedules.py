"""``/schedules``: add, list, read and remove schedules that start workflows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status

from graphrun import errors
from graphrun.api.auth import require
from graphrun.api.models import (
    BODY_ERRORS,
    COMMON_ERRORS,
    ScheduleIn,
    ScheduleListOut,
    ScheduleOut,
    error_responses,
)
from graphrun.engine.keys import Scope
from graphrun.engine.schedules import SCHEDULE_ID_RE

from ._params import EngineDep

__all__ = (
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
    "router",
)

router = APIRouter(
    prefix="/schedules", tags=["schedules"], responses=error_responses(*COMMON_ERRORS)
)
reader = [Depends(require(Scope.READ))]
writer = [Depends(require(Scope.WRITE))]
ScheduleId = Annotated[str, Path(pattern=rf"^{SCHEDULE_ID_RE.pattern}$", max_length=64)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleOut,
    dependencies=writer,
    responses=error_responses(*BODY_ERRORS, 404, 409),
    operation_id="create_schedule",
)
async def create_schedule(body: ScheduleIn, engine: EngineDep) -> dict[str, Any]:
    """Add a schedule; its first run is at its first due time.

    The cron expression, time zone and input are validated now (422 with the field); an id
    in use is 409 ``schedule_exists``, an unknown workflow 404.
    """
    try:
        created = await engine.schedules.create(
            body.id,
            body.workflow,
            body.input,
            cron=body.cron,
            every=body.every,
            timezone=body.timezone,
        )
    except errors.ValidationFailed as exc:
        raise exc.within("input") if exc.what == "input" else exc from None
    return created.to_json()


@router.get("", response_model=ScheduleListOut, dependencies=reader, operation_id="list_schedules")
async def list_schedules(engine: EngineDep) -> dict[str, Any]:
    """Every schedule, by id, with when it fires next."""
    return {"schedules": [s.to_json() for s in await engine.schedules.list_all()]}


@router.get(
    "/{schedule_id}",
    response_model=ScheduleOut,
    dependencies=reader,
    responses=error_responses(404),
    operation_id="get_schedule",
)
async def get_schedule(schedule_id: ScheduleId, engine: EngineDep) -> dict[str, Any]:
    """One schedule."""
    return (await engine.schedules.get(schedule_id)).to_json()


@router.delete(
    "/{schedule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=writer,
    responses=error_responses(404),
    operation_id="delete_schedule",
)
async def delete_schedule(schedule_id: ScheduleId, engine: EngineDep) -> Response:
    """Remove a schedule; the runs it started are kept."""
    await engine.schedules.delete(schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
