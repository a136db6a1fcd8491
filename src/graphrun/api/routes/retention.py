"""``/retention``: what the retention policy ages out; purging on demand (admin scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from graphrun.api.auth import require
from graphrun.api.models import BODY_ERRORS, COMMON_ERRORS, error_responses
from graphrun.engine.keys import Scope

from ._params import EngineDep

__all__ = (
    "PurgeIn",
    "PurgeOut",
    "RetentionStatsOut",
    "apply_retention",
    "retention_stats",
    "router",
)

router = APIRouter(
    prefix="/retention",
    tags=["retention"],
    dependencies=[Depends(require(Scope.ADMIN))],
    responses=error_responses(*COMMON_ERRORS),
)


class RetentionStatsOut(BaseModel):
    """Runs by status and age bucket, what they hold, and what the next purge would delete."""

    runs: list[dict[str, Any]]
    tables: dict[str, dict[str, Any]]
    next_purge: dict[str, int]


class PurgeIn(BaseModel):
    """A purge request."""

    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool = False


class PurgeOut(BaseModel):
    """What a purge deleted (or, dry, would delete)."""

    dry_run: bool
    rows: dict[str, int]
    runs_by_status: dict[str, int]
    bytes: int
    compacted_runs: int
    batches: int
    seconds: float
    reclaimed_pages: int
    busy: bool


@router.get("", response_model=RetentionStatsOut, operation_id="retention_stats")
async def retention_stats(engine: EngineDep) -> dict[str, Any]:
    """Runs by status and age, what they hold, the next purge: two grouped queries."""
    return (await engine.retention.stats()).to_json()


@router.post(
    "/apply",
    response_model=PurgeOut,
    responses=error_responses(*BODY_ERRORS),
    operation_id="apply_retention",
)
async def apply_retention(body: PurgeIn, engine: EngineDep) -> dict[str, Any]:
    """Purge what the policy ages out now (``dry_run``: only report it)."""
    return (await engine.retention.purge(dry_run=body.dry_run)).to_json()
