"""Retention: what a policy ages out, counted in a few grouped queries, and purged in batches.

A purge deletes finished runs (``completed``, ``failed``, ``cancelled``) past their age with
everything that belongs to them: checkpoints, pending writes, events and signals. Each batch
is one short transaction over at most ``batch_size`` runs, selected and deleted under the
same condition (on PostgreSQL the rows are locked, skipping any another transaction holds),
so a run retried meanwhile is never deleted and nothing is left without its run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from graphrun.config import RETENTION_DEFAULTS, RetentionPolicy

from .schema import checkpoint_writes, checkpoints, run_events, runs, signals

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("DEFAULT_BATCH", "PurgeReport", "RetentionStats", "purge", "purgeable", "stats")

DEFAULT_BATCH = 500  # runs per purge transaction
DAY = 86400.0
#: Age buckets of the stats, in days since a run finished (or was created, unfinished).
BUCKETS = (1, 7, 30, 90)
#: The tables a purge deletes from, children first.
FAMILY = ("checkpoint_writes", "checkpoints", "run_events", "signals", "runs")


@dataclass
class PurgeReport:
    """What a purge deleted (or, dry, would delete): rows per table and runs per status."""

    dry_run: bool
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILY, 0))
    runs_by_status: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0
    #: SQLite pages given back to the file system (``incremental_vacuum``) after each batch.
    reclaimed_pages: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "dry_run": self.dry_run,
            "rows": self.rows,
            "runs_by_status": self.runs_by_status,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "reclaimed_pages": self.reclaimed_pages,
        }


@dataclass(frozen=True)
class RetentionStats:
    """Runs by status and age, table sizes, and what the next purge would delete."""

    runs: list[dict[str, Any]]
    tables: dict[str, dict[str, Any]]
    next_purge: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"runs": self.runs, "tables": self.tables, "next_purge": self.next_purge}


def purgeable(policy: RetentionPolicy, now: float) -> ColumnElement[bool]:
    """The condition on ``runs`` of what ``policy`` ages out at ``now``.

    Each term is a status and a finish time before a cutoff: an index on (status,
    finished_at) serves it.
    """
    terms = []
    for status in RETENTION_DEFAULTS:
        overridden = sorted({w for w, s, _ in policy.workflows if s == status})
        default = and_(
            runs.c.status == status,
            runs.c.finished_at < now - policy.days_for(status) * DAY,
        )
        if overridden:
            default = and_(default, runs.c.workflow.not_in(overridden))
        terms.append(default)
        for workflow in overridden:
            terms.append(
                and_(
                    runs.c.status == status,
                    runs.c.workflow == workflow,
                    runs.c.finished_at < now - policy.days_for(status, workflow) * DAY,
                )
            )
    return or_(*terms)


#: PostgreSQL advisory lock key: one purge batch at a time across every process.
PURGE_LOCK = 0x67727275  # "grru"


def _delete_batch(db: Database, conn: Connection, condition: Any, limit: int) -> dict[str, Any]:
    if db.dialect == "postgresql":
        taken = conn.execute(select(func.pg_try_advisory_xact_lock(PURGE_LOCK))).scalar_one()
        if not taken:  # another process purges now: leave it the work
            return {"rows": dict.fromkeys(FAMILY, 0), "statuses": {}, "busy": True}
    chosen = select(runs.c.id, runs.c.status).where(condition).limit(limit)
    if db.dialect == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    picked = conn.execute(chosen).all()
    ids = [r.id for r in picked]
    counts: dict[str, Any] = dict.fromkeys(FAMILY, 0)
    if not ids:
        return {"rows": counts, "statuses": {}}
    counts["checkpoint_writes"] = conn.execute(
        delete(checkpoint_writes).where(checkpoint_writes.c.thread_id.in_(ids))
    ).rowcount
    counts["checkpoints"] = conn.execute(
        delete(checkpoints).where(checkpoints.c.thread_id.in_(ids))
    ).rowcount
    counts["run_events"] = conn.execute(
        delete(run_events).where(run_events.c.run_id.in_(ids))
    ).rowcount
    counts["signals"] = conn.execute(delete(signals).where(signals.c.run_id.in_(ids))).rowcount
    counts["runs"] = conn.execute(delete(runs).where(runs.c.id.in_(ids))).rowcount
    statuses: dict[str, int] = {}
    for row in picked:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    return {"rows": counts, "statuses": statuses}


async def purge(
    db: Database,
    policy: RetentionPolicy,
    *,
    now: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
    max_batches: int | None = None,
) -> PurgeReport:
    """Delete what ``policy`` ages out, ``batch_size`` runs per transaction; or count it.

    Args:
        db: The database.
        policy: How long runs are kept.
        now: The time to age from (the wall clock by default).
        batch_size: Runs per transaction: each holds its locks that briefly.
        dry_run: Count what would be deleted; change nothing.
        max_batches: Stop after this many batches (the periodic purge spreads its work).
    """
    started = time.monotonic()
    now = time.time() if now is None else now
    condition = purgeable(policy, now)
    report = PurgeReport(dry_run=dry_run)
    if dry_run:
        report.rows, report.runs_by_status = await _count(db, condition)
        report.seconds = time.monotonic() - started
        return report
    while max_batches is None or report.batches < max_batches:
        done = await db.write(lambda conn: _delete_batch(db, conn, condition, batch_size))
        report.batches += 1
        for table, n in done["rows"].items():
            report.rows[table] += n
        for status, n in done["statuses"].items():
            report.runs_by_status[status] = report.runs_by_status.get(status, 0) + n
        if done["rows"]["runs"]:
            report.reclaimed_pages += await db.reclaim_space()
        if done.get("busy") or done["rows"]["runs"] < batch_size:
            break
    report.seconds = time.monotonic() - started
    return report


async def _count(db: Database, condition: Any) -> tuple[dict[str, int], dict[str, int]]:
    """What a purge would delete: one query per table family."""
    return await db.read(lambda conn: _count_in(conn, condition))


def _count_in(conn: Connection, condition: Any) -> tuple[dict[str, int], dict[str, int]]:
    """`_count` inside a read the caller holds."""
    doomed = select(runs.c.id).where(condition).scalar_subquery()
    by_status = {
        r.status: int(r.n)
        for r in conn.execute(
            select(runs.c.status, func.count().label("n")).where(condition).group_by(runs.c.status)
        )
    }
    rows = {"runs": sum(by_status.values())}
    for name, table, column in (
        ("checkpoint_writes", checkpoint_writes, checkpoint_writes.c.thread_id),
        ("checkpoints", checkpoints, checkpoints.c.thread_id),
        ("run_events", run_events, run_events.c.run_id),
        ("signals", signals, signals.c.run_id),
    ):
        rows[name] = int(
            conn.execute(
                select(func.count()).select_from(table).where(column.in_(doomed))
            ).scalar_one()
        )
    return {t: rows[t] for t in FAMILY}, by_status


def _bucket(age_days: Any) -> Any:
    whens = [(age_days < days, f"<{days}d") for days in BUCKETS]
    return case(*whens, else_=f">={BUCKETS[-1]}d")


async def stats(
    db: Database, policy: RetentionPolicy, *, now: float | None = None
) -> RetentionStats:
    """Runs by status and age bucket (count, oldest, newest), table sizes, the next purge.

    One grouped query for runs and one per other table family, whatever the number of runs.
    """
    now = time.time() if now is None else now
    age = (now - func.coalesce(runs.c.finished_at, runs.c.created_at)) / DAY
    bucket = _bucket(age).label("age")

    def job(conn: Connection) -> RetentionStats:
        grouped = conn.execute(
            select(
                runs.c.status,
                bucket,
                func.count().label("n"),
                func.min(runs.c.created_at).label("oldest"),
                func.max(runs.c.created_at).label("newest"),
            ).group_by(runs.c.status, bucket)
        ).all()
        by_run = [
            {
                "status": r.status,
                "age": r.age,
                "runs": int(r.n),
                "oldest": r.oldest,
                "newest": r.newest,
            }
            for r in grouped
        ]
        tables: dict[str, dict[str, Any]] = {}
        sized: Sequence[tuple[str, Any, Any]] = (
            (
                "checkpoints",
                checkpoints,
                func.length(checkpoints.c.checkpoint) + func.length(checkpoints.c.metadata),
            ),
            ("checkpoint_writes", checkpoint_writes, func.length(checkpoint_writes.c.value)),
        )
        for name, table, size in sized:
            row = conn.execute(
                select(func.count(), func.coalesce(func.sum(size), 0)).select_from(table)
            ).one()
            tables[name] = {"rows": int(row[0]), "bytes": int(row[1])}
        for name, table in (("run_events", run_events), ("signals", signals)):
            tables[name] = {
                "rows": int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            }
        next_purge, _ = _count_in(conn, purgeable(policy, now))
        return RetentionStats(runs=by_run, tables=tables, next_purge=next_purge)

    return await db.read(job)  # one read: the figures agree with each other
