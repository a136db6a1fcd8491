"""App versions (their files and dependency locks) and the status of each app's last load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, update

from .records import RunStatus
from .schema import app_versions, apps, runs, workflows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = (
    "AppStatus",
    "AppVersion",
    "UnfinishedVersion",
    "published_app_versions",
    "record_lock",
    "record_status",
    "record_version",
    "servable",
    "statuses",
    "unfinished",
    "version",
    "version_files",
    "versions",
)

#: Run statuses that still need their workflow version.
UNFINISHED = (
    RunStatus.QUEUED.value,
    RunStatus.RUNNING.value,
    RunStatus.WAITING.value,
    RunStatus.PAUSED.value,
)


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True, kw_only=True)
class AppVersion:
    """One version of an app as stored (without its files)."""

    app: str
    version: str
    size: int
    dependencies: list[str]
    #: The packages its environment holds, once installed: ``[{"name", "version", "sha256"}]``.
    lock: list[dict[str, Any]] | None
    installed_at: datetime | None
    created_at: datetime
    install_log: str | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> AppVersion:
        """Build from an ``app_versions`` row mapping."""
        return cls(
            app=row["app"],
            version=row["version"],
            size=row["size"],
            dependencies=list(row["dependencies"] or []),
            lock=row["lock"],
            installed_at=_time(row["installed_at"]),
            created_at=_time(row["created_at"]),  # type: ignore[arg-type]
            install_log=row.get("install_log"),
        )


@dataclass(frozen=True, kw_only=True)
class AppStatus:
    """How the last process that loaded an app found it."""

    name: str
    version: str | None
    #: ``ok`` or ``failed``.
    status: str
    #: ``{"type", "message", "traceback"}`` when failed.
    error: dict[str, Any] | None
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class UnfinishedVersion:
    """Runs not yet finished on one workflow version."""

    workflow: str
    definition_version: str
    #: The app version it belongs to, when the catalog knows it.
    app_version: str | None
    app: str | None
    #: Run status to how many runs.
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """All unfinished runs on this version."""
        return sum(self.counts.values())


async def record_version(
    db: Database, app: str, version: str, dependencies: list[str], files: Callable[[], bytes]
) -> bool:
    """Store an app version's files unless it is stored already; True when it was new.

    ``files`` is called only for a new version (zipping an app costs more than a lookup).
    """
    known = await db.row(
        select(app_versions.c.version).where(
            app_versions.c.app == app, app_versions.c.version == version
        )
    )
    if known is not None:
        return False
    data = await asyncio.to_thread(files)  # reads and zips files: off the event loop

    def job(conn: Connection) -> bool:
        stmt = db.insert(app_versions).values(
            app=app,
            version=version,
            files=data,
            size=len(data),
            dependencies=dependencies,
            created_at=time.time(),
        )
        result = conn.execute(stmt.on_conflict_do_nothing())
        return bool(result.rowcount)

    return await db.write(job)


async def version(db: Database, app: str, version: str) -> AppVersion | None:
    """One stored version of an app (without its files)."""
    cols = [c for c in app_versions.c if c.name != "files"]
    row = await db.row(
        select(*cols).where(app_versions.c.app == app, app_versions.c.version == version)
    )
    return None if row is None else AppVersion.from_row(row)


async def versions(db: Database, app: str | None = None) -> list[AppVersion]:
    """Stored versions, newest first (of one app, or all)."""
    cols = [c for c in app_versions.c if c.name not in ("files", "install_log")]
    stmt = select(*cols).order_by(app_versions.c.app, app_versions.c.created_at.desc())
    if app is not None:
        stmt = stmt.where(app_versions.c.app == app)
    return [AppVersion.from_row(r) for r in await db.rows(stmt)]


async def version_files(db: Database, app: str, version: str) -> bytes | None:
    """The zipped files of a stored version."""
    row = await db.row(
        select(app_versions.c.files).where(
            app_versions.c.app == app, app_versions.c.version == version
        )
    )
    return None if row is None else bytes(row["files"])


async def record_lock(
    db: Database, app: str, version: str, lock: list[dict[str, Any]], log: str
) -> None:
    """Record what ``graphrun apps install`` put in a version's environment."""

    def job(conn: Connection) -> None:
        conn.execute(
            update(app_versions)
            .where(app_versions.c.app == app, app_versions.c.version == version)
            .values(lock=lock, install_log=log[-100_000:], installed_at=time.time())
        )

    await db.write(job)


async def record_status(
    db: Database, name: str, version: str | None, status: str, error: dict[str, Any] | None
) -> None:
    """Record how an app loaded in this process (``ok`` or ``failed``)."""

    def job(conn: Connection) -> None:
        stmt = db.insert(apps).values(
            name=name, version=version, status=status, error=error, updated_at=time.time()
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[apps.c.name],
                set_={
                    "version": stmt.excluded.version,
                    "status": stmt.excluded.status,
                    "error": stmt.excluded.error,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        )

    await db.write(job)


async def statuses(db: Database) -> list[AppStatus]:
    """Every app's last load, by name."""
    rows = await db.rows(select(apps).order_by(apps.c.name))
    return [
        AppStatus(
            name=r["name"],
            version=r["version"],
            status=r["status"],
            error=r["error"],
            updated_at=_time(r["updated_at"]),  # type: ignore[arg-type]
        )
        for r in rows
    ]


async def unfinished(
    db: Database, workflow_names: Collection[str] | None = None
) -> list[UnfinishedVersion]:
    """Unfinished runs per workflow version, with the app version each belongs to.

    One grouped query (runs by status are found through their status index), joined to the
    catalog for the app version.
    """
    counted = (
        select(
            runs.c.workflow,
            runs.c.definition_version,
            runs.c.status,
            func.count().label("n"),
        )
        .where(runs.c.status.in_(UNFINISHED))
        .group_by(runs.c.workflow, runs.c.definition_version, runs.c.status)
    )
    if workflow_names is not None:
        counted = counted.where(runs.c.workflow.in_(list(workflow_names)))
    sub = counted.subquery()
    stmt = select(sub, workflows.c.app, workflows.c.app_version).outerjoin(
        workflows,
        and_(workflows.c.name == sub.c.workflow, workflows.c.version == sub.c.definition_version),
    )
    found: dict[tuple[str, str], UnfinishedVersion] = {}
    for row in await db.rows(stmt):
        key = (row["workflow"], row["definition_version"])
        if key not in found:
            found[key] = UnfinishedVersion(
                workflow=row["workflow"],
                definition_version=row["definition_version"],
                app_version=row["app_version"],
                app=row["app"],
                counts={},
            )
        found[key].counts[row["status"]] = int(row["n"])
    return sorted(found.values(), key=lambda u: (u.workflow, u.definition_version))


async def published_app_versions(db: Database, app: str) -> set[str]:
    """The app versions whose workflows some worker published to the catalog."""
    rows = await db.rows(select(workflows.c.app_version).where(workflows.c.app == app).distinct())
    return {r["app_version"] for r in rows if r["app_version"]}


async def servable(db: Database, workflow: str, definition_version: str) -> bool:
    """Whether a worker can serve this workflow version: its app version's files are stored."""
    row = await db.row(
        select(app_versions.c.version)
        .select_from(
            workflows.join(
                app_versions,
                and_(
                    app_versions.c.app == workflows.c.app,
                    app_versions.c.version == workflows.c.app_version,
                ),
            )
        )
        .where(workflows.c.name == workflow, workflows.c.version == definition_version)
    )
    return row is not None
