"""The workflow catalog: workflow versions that workers publish, read by any process."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .records import WorkflowRecord
from .schema import workflows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("Publication", "get", "latest", "publish")


@dataclass(frozen=True, kw_only=True)
class Publication:
    """One workflow version to publish."""

    name: str
    version: str
    app: str
    input_schema: dict[str, Any]
    graph: str
    signals: dict[str, Any]
    #: The app version (content hash of the app's files) it belongs to.
    app_version: str | None = None
    #: ``python`` or ``yaml``.
    kind: str | None = None
    #: Whether ``input_schema`` checks a start rather than describes the input.
    input_enforced: bool = True


async def publish(db: Database, items: Collection[Publication]) -> None:
    """Record workflow versions; republishing a known version refreshes it."""
    if not items:
        return

    def job(conn: Connection) -> None:
        stmt = db.insert(workflows).values(published_at=db.now())
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[workflows.c.name, workflows.c.version],
                set_={
                    "published_at": stmt.excluded.published_at,
                    "signals": stmt.excluded.signals,
                    "app_version": stmt.excluded.app_version,
                    "kind": stmt.excluded.kind,
                    "input_enforced": stmt.excluded.input_enforced,
                },
            ),
            [
                {
                    "name": p.name,
                    "version": p.version,
                    "app": p.app,
                    "input_schema": p.input_schema,
                    "graph": p.graph,
                    "signals": p.signals,
                    "app_version": p.app_version,
                    "kind": p.kind,
                    "input_enforced": p.input_enforced,
                }
                # In name order: processes publishing together lock the rows in one order.
                for p in sorted(items, key=lambda p: (p.name, p.version))
            ],
        )

    await db.write(job)


async def get(db: Database, name: str, version: str) -> WorkflowRecord | None:
    """One published version of a workflow."""
    row = await db.row(
        select(workflows).where(workflows.c.name == name, workflows.c.version == version)
    )
    return None if row is None else WorkflowRecord.from_row(row)


async def latest(db: Database) -> list[WorkflowRecord]:
    """The most recently published version of every workflow."""
    rows = await db.rows(
        select(workflows).order_by(workflows.c.name, workflows.c.published_at.desc())
    )
    seen: dict[str, WorkflowRecord] = {}
    for row in rows:
        seen.setdefault(row["name"], WorkflowRecord.from_row(row))
    return list(seen.values())
