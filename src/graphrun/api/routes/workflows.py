"""``/workflows``: the catalog the workers published (name, version, input schema, graph)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from graphrun.api.auth import require
from graphrun.api.models import COMMON_ERRORS, WORKFLOW_NAME, WorkflowOut, error_responses
from graphrun.engine.keys import Scope

from ._params import EngineDep

__all__ = (
    "get_workflow",
    "list_workflows",
    "router",
)

router = APIRouter(
    prefix="/workflows",
    tags=["workflows"],
    dependencies=[Depends(require(Scope.READ))],
    responses=error_responses(*COMMON_ERRORS),
)


def _json(record: Any) -> dict[str, Any]:
    return {
        "name": record.name,
        "version": record.version,
        "app": record.app,
        "published_at": record.published_at,
        "input_schema": record.input_schema,
        "graph": record.graph,
    }


@router.get("", response_model=list[WorkflowOut], operation_id="list_workflows")
async def list_workflows(engine: EngineDep) -> list[dict[str, Any]]:
    """Every workflow's newest published version, by name."""
    return [_json(w) for w in await engine.workflows.latest()]


@router.get(
    "/{name}",
    response_model=WorkflowOut,
    responses=error_responses(404),
    operation_id="get_workflow",
)
async def get_workflow(
    name: Annotated[str, Path(pattern=WORKFLOW_NAME, max_length=127)],
    engine: EngineDep,
) -> dict[str, Any]:
    """One workflow's newest published version."""
    return _json(await engine.workflows.published(name))
