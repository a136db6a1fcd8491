"""Path parameters and dependencies that several routers share."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Path, Request
from fastapi.dependencies.models import Dependant

from graphrun import errors
from graphrun.api.auth import engine_of
from graphrun.api.errors import pointer
from graphrun.engine import Engine
from graphrun.storage.records import Run

__all__ = ("EngineDep", "RunId", "existing_run", "known_query_only")

EngineDep = Annotated[Engine, Depends(engine_of)]
RunId = Annotated[UUID, Path(description="The run's id (a UUID).")]


async def existing_run(run_id: RunId, engine: EngineDep) -> Run:
    """The run named in the path (404 before anything else happens when there is none)."""
    return await engine.get(str(run_id))


async def known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not declare (422), rather than ignore them.

    A misspelt filter (``?stauts=failed``) would otherwise silently return everything, and
    an injection attempt (``?sort=id;DROP TABLE runs``) would look accepted.
    """
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise errors.ValidationFailed(
            "query",
            [
                {"pointer": pointer(("query", name)), "message": "unknown query parameter"}
                for name in unknown
            ],
        )


def _query_names(dependant: Dependant) -> set[str]:
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(p.alias for p in current.query_params)
        pending.extend(current.dependencies)
    return names
