"""Path parameters and dependencies that several routers share."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Path

from graphrun.api.auth import engine_of
from graphrun.engine import Engine
from graphrun.storage.records import Run

__all__ = ("EngineDep", "RunId", "existing_run")

EngineDep = Annotated[Engine, Depends(engine_of)]
RunId = Annotated[UUID, Path(description="The run's id (a UUID).")]


async def existing_run(run_id: RunId, engine: EngineDep) -> Run:
    """The run named in the path (404 before anything else happens when there is none)."""
    return await engine.get(str(run_id))
