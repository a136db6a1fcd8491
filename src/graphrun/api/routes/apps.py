"""``/apps``: apps with their status and versions; installing an app's dependencies (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from graphrun.api.auth import require
from graphrun.api.models import (
    BODY_ERRORS,
    COMMON_ERRORS,
    AppOut,
    InstallIn,
    InstallOut,
    error_responses,
)
from graphrun.engine.keys import Scope

from ._params import EngineDep

__all__ = (
    "install_app",
    "list_apps",
    "router",
)

router = APIRouter(prefix="/apps", tags=["apps"], responses=error_responses(*COMMON_ERRORS))


@router.get(
    "",
    response_model=list[AppOut],
    dependencies=[Depends(require(Scope.READ))],
    operation_id="list_apps",
)
async def list_apps(engine: EngineDep) -> list[dict[str, Any]]:
    """Every app: its last load (``failed`` carries the traceback), versions, unfinished runs."""
    return [a.to_json() for a in await engine.apps.overview()]


@router.post(
    "/install",
    response_model=InstallOut,
    dependencies=[Depends(require(Scope.ADMIN))],
    responses=error_responses(404, *BODY_ERRORS),
    operation_id="install_app",
)
async def install_app(body: InstallIn, engine: EngineDep) -> dict[str, Any]:
    """Validate an app's dependency specs and build its environment (admin scope).

    A refused spec answers 422 and starts nothing; a failed build answers 422 with pip's log
    and leaves the previous environment in place.
    """
    result = await engine.apps.install(body.path)
    return {
        "app": result.app,
        "version": result.version,
        "environment": str(result.environment),
        "lock": result.lock,
        "reused": result.reused,
    }
