"""Probes: ``/healthz`` (the process answers) and ``/readyz`` (and so does its database).

Neither needs a key: orchestrators call them without one, and they reveal nothing.
"""

from __future__ import annotations

from fastapi import APIRouter

from graphrun.api.models import HealthOut, error_responses

from ._params import EngineDep

__all__ = (
    "healthz",
    "readyz",
    "router",
)

router = APIRouter(tags=["health"], responses=error_responses(422))


@router.get("/healthz", response_model=HealthOut, operation_id="healthz")
async def healthz() -> HealthOut:
    """The server process is up."""
    return HealthOut(status="ok")


@router.get(
    "/readyz", response_model=HealthOut, responses=error_responses(503), operation_id="readyz"
)
async def readyz(engine: EngineDep) -> HealthOut:
    """The database answers and its schema is current (503 otherwise)."""
    await engine.check_ready()
    return HealthOut(status="ready")
