"""Retention: what a policy ages out, counted in a few grouped queries, and purged in batches.

A purge deletes finished runs (``completed``, ``failed``, ``cancelled``) past their age with
everything that belongs to them: checkpoints, pending writes, events and signals. Each batch
is one short transaction over at most ``batch_size`` runs, selected and deleted under the
same condition (on PostgreSQL the rows are locked, skipping any another transaction holds),
so a run retried meanwhile is never deleted and nothing is left without its run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import and_, case, delete, func, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from graphrun.config import RETENTION_DEFAULTS, RetentionPolicy

from . import footprint, totals
from .records import RunStatus
from .schema import checkpoint_writes, checkpoints, run_events, run_totals, runs, signals

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = (
    "DEFAULT_BATCH",
    "PurgeReport",
    "RetentionStats",
    "compactable",
    "purge",
    "purgeable",
    "stats",
)

DEFAULT_BATCH = 500  # runs per purge transaction
DAY = totals.DAY
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
    #: Checkpoint and write bytes freed (as counted when each run finished).
    bytes: int = 0
    #: Completed runs cut down to their last checkpoint (``keep_last_checkpoint_after``).
    compacted_runs: int = 0
    batches: int = 0
    seconds: float = 0.0
    #: SQLite pages given back to the file system (``incremental_vacuum``) after each batch.
    reclaimed_pages: int = 0
    #: Another process was purging (PostgreSQL): this one left it the work.
    busy: bool = False

    def add(self, batch: dict[str, Any]) -> None:
        """Count in what one batch did."""
        self.batches += 1
        for table, n in batch["rows"].items():
            self.rows[table] += n
        for status, n in batch["statuses"].items():
            self.runs_by_status[status] = self.runs_by_status.get(status, 0) + n
        self.bytes += batch["bytes"]
        self.compacted_runs += batch.get("compacted", 0)
        self.busy = bool(batch.get("busy"))

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "dry_run": self.dry_run,
            "rows": self.rows,
            "runs_by_status": self.runs_by_status,
            "bytes": self.bytes,
            "compacted_runs": self.compacted_runs,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "reclaimed_pages": self.reclaimed_pages,
            "busy": self.busy,
        }


@dataclass(frozen=True)
class RetentionStats:
    """Runs by status and age, what they hold, and what the next purge would delete."""

    runs: list[dict[str, Any]]
    tables: dict[str, dict[str, Any]]
    next_purge: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"runs": self.runs, "tables": self.tables, "next_purge": self.next_purge}


@dataclass(frozen=True)
class _Term:
    """Part of a policy: runs of a status (and workflow) finished before a cutoff.

    ``workflow`` names the one workflow a per-workflow term is about; ``others``, the
    workflows the status's default term leaves to their own terms.
    """

    status: str
    cutoff: float
    workflow: str | None = None
    others: tuple[str, ...] = ()

    def which(self, status: Any, workflow: Any) -> ColumnElement[bool]:
        """The term's status and workflow condition on a table's columns."""
        if self.workflow is not None:
            return and_(status == self.status, workflow == self.workflow)
        if self.others:
            return and_(status == self.status, workflow.not_in(self.others))
        return cast("ColumnElement[bool]", status == self.status)

    @property
    def cutoff_day(self) -> int:
        """The finish day the cutoff falls on: days before it are wholly past the cutoff."""
        return int(self.cutoff // DAY)


def _terms(policy: RetentionPolicy, now: float) -> list[_Term]:
    terms = []
    for status in RETENTION_DEFAULTS:
        overridden = tuple(sorted({w for w, s, _ in policy.workflows if s == status}))
        terms.append(_Term(status, now - policy.days_for(status) * DAY, others=overridden))
        for workflow in overridden:
            cutoff = now - policy.days_for(status, workflow) * DAY
            terms.append(_Term(status, cutoff, workflow=workflow))
    return terms


def _due(term: _Term) -> ColumnElement[bool]:
    """The runs a term ages out: an index on (status, finished_at) serves it."""
    return and_(term.which(runs.c.status, runs.c.workflow), runs.c.finished_at < term.cutoff)


def purgeable(policy: RetentionPolicy, now: float) -> ColumnElement[bool]:
    """The condition on ``runs`` of what ``policy`` ages out at ``now``."""
    return or_(*(_due(t) for t in _terms(policy, now)))


#: PostgreSQL advisory lock key: one purge batch at a time across every process.
PURGE_LOCK = 0x67727275  # "grru"
LIVE = tuple(s.value for s in RunStatus if not s.terminal)


#: One purge transaction: (database, connection, condition, limit) -> what it did.
Batch = Callable[["Database", "Connection", Any, int], dict[str, Any]]


def _empty() -> dict[str, Any]:
    return {"rows": dict.fromkeys(FAMILY, 0), "statuses": {}, "bytes": 0}


def _locked(db: Database, conn: Connection) -> bool:
    """PostgreSQL: take the purge lock for this transaction, unless another process has it."""
    return db.try_transaction_lock(conn, PURGE_LOCK)


def _pick(db: Database, condition: Any, limit: int) -> Any:
    """The ``limit`` first-finished runs matching ``condition``, locked (PostgreSQL).

    With what the totals count of them. Rows another transaction holds are skipped. In
    finish order, by the (status, finished_at) index: the caller then starts the next batch
    at the last finish time, past the index entries of the runs it deleted.
    """
    chosen = totals.counted().where(condition).order_by(runs.c.finished_at).limit(limit)
    return chosen.with_for_update(skip_locked=True)


def _among(db: Database, column: Any, ids: Sequence[str]) -> Any:
    """``column IN ids``, for a batch of hundreds of ids.

    On PostgreSQL one string parameter the server splits (ids hold no comma): far cheaper
    for the client than rendering and sending a parameter per id.
    """
    return db.among(column, ids)


def _holding(picked: Sequence[Any], counter: str) -> list[str]:
    """The picked runs that hold rows of a table, by their footprint (unknown: assume so)."""
    return [r.id for r in picked if getattr(r, counter) is None or getattr(r, counter) > 0]


def _delete_batch(db: Database, conn: Connection, condition: Any, limit: int) -> dict[str, Any]:
    if not _locked(db, conn):  # another process purges now: leave it the work
        return _empty() | {"busy": True}
    picked = conn.execute(_pick(db, condition, limit)).all()
    ids = [r.id for r in picked]
    found = _empty()
    if not ids:
        return found
    counts = found["rows"]
    totals.take_out(db, conn, picked)
    # Only the runs holding rows of a table are looked up in it (a finished run's footprint
    # says which): most finished runs have no checkpoint and no signal left.
    for name, table, column in (
        ("checkpoint_writes", checkpoint_writes, checkpoint_writes.c.thread_id),
        ("checkpoints", checkpoints, checkpoints.c.thread_id),
        ("run_events", run_events, run_events.c.run_id),
        ("signals", signals, signals.c.run_id),
    ):
        holding = _holding(picked, footprint.COUNTERS[name])
        if holding:
            counts[name] = conn.execute(delete(table).where(_among(db, column, holding))).rowcount
    counts["runs"] = conn.execute(delete(runs).where(_among(db, runs.c.id, ids))).rowcount
    for row in picked:
        found["statuses"][row.status] = found["statuses"].get(row.status, 0) + 1
        found["bytes"] += row.checkpoint_bytes or 0
    found["last"] = picked[-1].finished_at
    return found


def compactable(policy: RetentionPolicy, now: float) -> ColumnElement[bool] | None:
    """The completed runs ``keep_last_checkpoint_after`` cuts down, if the policy has it.

    Served by a partial index of the finished runs holding more than one checkpoint.
    """
    after = policy.keep_last_checkpoint_after
    if after is None:
        return None
    return and_(
        runs.c.status == "completed",
        runs.c.finished_at < now - after * DAY,
        runs.c.n_checkpoints > 1,
    )


def _compact_batch(db: Database, conn: Connection, condition: Any, limit: int) -> dict[str, Any]:
    """Delete all but the newest root checkpoint (and its writes) of up to ``limit`` runs."""
    if not _locked(db, conn):
        return _empty() | {"busy": True}
    before = conn.execute(_pick(db, condition, limit)).all()
    ids = [r.id for r in before]
    found = _empty()
    if not ids:
        return found
    kept = [
        (r.thread_id, r.newest)
        for r in conn.execute(
            select(checkpoints.c.thread_id, func.max(checkpoints.c.checkpoint_id).label("newest"))
            .where(checkpoints.c.thread_id.in_(ids), checkpoints.c.checkpoint_ns == "")
            .group_by(checkpoints.c.thread_id)
        )
    ]
    totals.take_out(db, conn, before)  # counted in again, smaller, by `footprint.count_in`
    # By (thread, checkpoint): a fork's thread holds copies of its source's checkpoints.
    for name, table in (("checkpoint_writes", checkpoint_writes), ("checkpoints", checkpoints)):
        found["rows"][name] = conn.execute(
            delete(table).where(
                table.c.thread_id.in_(ids),
                or_(
                    table.c.checkpoint_ns != "",
                    tuple_(table.c.thread_id, table.c.checkpoint_id).not_in(kept),
                ),
            )
        ).rowcount
    footprint.count_in(db, conn, ids)
    after = conn.execute(
        select(func.coalesce(func.sum(runs.c.checkpoint_bytes), 0)).where(runs.c.id.in_(ids))
    ).scalar_one()
    found["bytes"] = sum(r.checkpoint_bytes or 0 for r in before) - int(after)
    found["compacted"] = len(ids)
    found["last"] = before[-1].finished_at
    return found


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

    Then, if the policy says so, cut old completed runs down to their last checkpoint.

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
    report = PurgeReport(dry_run=dry_run)
    if dry_run:
        doomed = await db.read(lambda conn: _next_purge(conn, policy, now))
        report.rows, report.runs_by_status, report.bytes = doomed
        report.seconds = time.monotonic() - started
        return report
    # One term (status, workflow) at a time, each in finish order from where the last batch
    # ended: a batch's index scan never walks what earlier batches deleted (on PostgreSQL,
    # dead entries until vacuum), nor builds a bitmap of everything due.
    steps: list[tuple[Any, Batch]] = [(_due(t), _delete_batch) for t in _terms(policy, now)]
    compact = compactable(policy, now)
    if compact is not None:
        steps.append((compact, _compact_batch))
    for condition, batch in steps:
        low: float | None = None
        while max_batches is None or report.batches < max_batches:
            where = condition if low is None else and_(condition, runs.c.finished_at >= low)

            def one(conn: Connection, batch: Batch = batch, where: Any = where) -> dict[str, Any]:
                return batch(db, conn, where, batch_size)

            done = await db.write(one)
            low = done.get("last", low)
            report.add(done)
            if any(done["rows"].values()):
                report.reclaimed_pages += await db.reclaim_space()
            if done.get("busy") or (done["rows"]["runs"] or done.get("compacted", 0)) < batch_size:
                break
        if report.busy:  # another process purges now: leave it the work
            break
    if report.rows["runs"]:
        await db.write(lambda conn: totals.drop_empty(conn, now))  # the days purged whole
    report.seconds = time.monotonic() - started
    return report


def _amounts(table: Any) -> list[Any]:
    """A table's footprint columns, summed."""
    return [func.coalesce(func.sum(table.c[c]), 0) for c in totals.AMOUNTS]


def _rows_of(counted: Sequence[Any]) -> dict[str, int]:
    """Rows per table from summed footprint columns (`totals.AMOUNTS` order, bytes last)."""
    return {t: int(v or 0) for t, v in zip(footprint.COUNTERS, counted, strict=False)}


def _next_purge(
    conn: Connection, policy: RetentionPolicy, now: float
) -> tuple[dict[str, int], dict[str, int], int]:
    """What a purge would delete (rows per table, runs per status, bytes): two queries.

    Whole finish days before each cutoff are summed from ``run_totals``; only the day a
    cutoff falls on is read from ``runs`` (by its index), where the finish times are.
    """
    terms = _terms(policy, now)
    rows = dict.fromkeys(FAMILY, 0)
    by_status: dict[str, int] = {}
    size = 0
    whole_days = or_(
        *(
            and_(
                t.which(run_totals.c.status, run_totals.c.workflow), run_totals.c.day < t.cutoff_day
            )
            for t in terms
        )
    )
    cutoff_days = or_(
        *(
            and_(
                t.which(runs.c.status, runs.c.workflow),
                runs.c.finished_at >= t.cutoff_day * DAY,
                runs.c.finished_at < t.cutoff,
            )
            for t in terms
        )
    )
    for query in (
        select(run_totals.c.status, func.sum(run_totals.c.runs), *_amounts(run_totals))
        .where(whole_days)
        .group_by(run_totals.c.status),
        select(runs.c.status, func.count(), *_amounts(runs))
        .where(cutoff_days)
        .group_by(runs.c.status),
    ):
        for status, n, *counted in conn.execute(query):
            by_status[status] = by_status.get(status, 0) + int(n)
            rows["runs"] += int(n)
            for table, value in _rows_of(counted).items():
                rows[table] += value
            size += int(counted[-1])
    return rows, by_status, size


def _bucket(age_days: Any) -> Any:
    whens = [(age_days < days, f"<{days}d") for days in BUCKETS]
    return case(*whens, else_=f">={BUCKETS[-1]}d")


def _live_footprint() -> list[Any]:
    """What unfinished runs hold, counted from their rows (they are few next to finished)."""
    measured = footprint.measured(runs.c.id)
    return [func.coalesce(func.sum(measured[c]), 0) for c in totals.AMOUNTS]


async def stats(
    db: Database, policy: RetentionPolicy, *, now: float | None = None
) -> RetentionStats:
    """Runs by status and age bucket (count, oldest, newest, what they hold), the next purge.

    Finished runs come from ``run_totals``, by finish day (their age is whole days since
    it; oldest and newest are the starts of the first and last finish days); unfinished
    runs from their rows (age since created). A few queries, whatever the number of runs.
    """
    now = time.time() if now is None else now
    today = int(now // DAY)

    def job(conn: Connection) -> RetentionStats:
        finished_age = _bucket(today - run_totals.c.day).label("age")
        live_age = _bucket((now - runs.c.created_at) / DAY).label("age")
        found = [
            *conn.execute(
                select(
                    run_totals.c.status,
                    finished_age,
                    func.sum(run_totals.c.runs),
                    func.min(run_totals.c.day) * DAY,
                    func.max(run_totals.c.day) * DAY,
                    *_amounts(run_totals),
                )
                .group_by(run_totals.c.status, finished_age)
                .having(func.sum(run_totals.c.runs) > 0)
            ),
            *conn.execute(
                select(
                    runs.c.status,
                    live_age,
                    func.count(),
                    func.min(runs.c.created_at),
                    func.max(runs.c.created_at),
                    *_live_footprint(),
                )
                .where(runs.c.status.in_(LIVE))
                .group_by(runs.c.status, live_age)
            ),
        ]
        by_run = []
        tables = {name: {"rows": 0} for name in FAMILY}
        tables["checkpoints"]["bytes"] = 0
        for status, age, n, oldest, newest, *counted in found:
            held = _rows_of(counted)
            by_run.append(
                {
                    "status": status,
                    "age": age,
                    "runs": int(n),
                    "oldest": oldest,
                    "newest": newest,
                    "rows": held,
                    "bytes": int(counted[-1]),
                }
            )
            tables["runs"]["rows"] += int(n)
            for table, value in held.items():
                tables[table]["rows"] += value
            tables["checkpoints"]["bytes"] += int(counted[-1])
        next_purge, _, _ = _next_purge(conn, policy, now)
        return RetentionStats(runs=by_run, tables=tables, next_purge=next_purge)

    return await db.read(job)  # one read: the figures agree with each other
