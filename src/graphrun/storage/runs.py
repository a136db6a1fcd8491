"""The runs aggregate's rows: creation, compare-and-set transitions, claims, leases, listing.

Every state change is one conditional UPDATE (``WHERE id = :id AND status IN (...) AND
version = :seen`` and, for a worker's writes, ``AND lease_owner = :me AND lease_epoch =
:epoch``); a change that matches no row lost the race and says why. What follows each
change (events, totals, notifications, a parent told) is `storage.lifecycle`'s.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeAlias

from sqlalchemy import bindparam, case, or_, select, tuple_, update

from graphrun import errors

from .records import Fence, Run, RunError, RunPage, RunStatus, WaitingOn
from .schema import runs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = (
    "KEEP",
    "Change",
    "Fence",
    "HeldLease",
    "Keep",
    "NewRun",
    "claim_rows_in",
    "compare_and_set_in",
    "exists_in",
    "expire_rows_in",
    "fence_checkpoint",
    "get",
    "get_many",
    "heartbeat",
    "insert_row_in",
    "list_page",
    "queued_on_version",
    "stop_requests",
)

MAX_PAGE = 1000  # runs per list page
HALF_MICROSECOND = 5e-7  # seconds


class _Keep(enum.Enum):
    KEEP = "keep"


#: A `Change` field left at this is not written.
KEEP = _Keep.KEEP
Keep: TypeAlias = Literal[_Keep.KEEP]


@dataclass(frozen=True, kw_only=True)
class Change:
    """What a transition writes on a run's row; every field left at `KEEP` stays as it is.

    The status columns that follow a status (``finished_at``, a cleared timer, a cancel
    that wins) are the transition's own business, not the caller's.
    """

    #: The new status (None: the status does not change).
    status: RunStatus | None = None
    #: The final state of a completed run.
    output: Any = KEEP
    error: RunError | Keep | None = KEEP
    waiting_for: Sequence[WaitingOn] | Keep | None = KEEP
    #: Answers for the run's interrupts, by interrupt id, taken when it continues.
    resume: dict[str, Any] | Keep | None = KEEP
    #: When the run's earliest timer is due (epoch seconds).
    wake_at: float | Keep | None = KEEP
    #: The checkpoint the run continues from.
    checkpoint_id: str | Keep | None = KEEP
    cancel_requested: bool | Keep = KEEP
    pause_requested: bool | Keep = KEEP
    #: Only ever cleared (a retry takes a finished run back).
    finished_at: Keep | None = KEEP
    #: Give up the lease (no owner, no expiry).
    release_lease: bool = False

    def merged(self, other: Change) -> Change:
        """This change with every field ``other`` sets written over it."""
        changes = {
            f.name: getattr(other, f.name)
            for f in fields(other)
            if getattr(other, f.name) is not KEEP and f.name not in ("status", "release_lease")
        }
        merged: Change = replace(
            self,
            **changes,
            status=other.status or self.status,
            release_lease=self.release_lease or other.release_lease,
        )
        return merged

    def columns(self) -> dict[str, Any]:
        """The row's columns to set (``status`` among them for a status change)."""
        values: dict[str, Any] = {}
        if self.status is not None:
            values["status"] = self.status
        for name in _PLAIN_COLUMNS:
            value = getattr(self, name)
            if value is not KEEP:
                values[name] = value
        if not isinstance(self.error, _Keep):
            values["error"] = None if self.error is None else self.error.to_json()
        if not isinstance(self.waiting_for, _Keep):
            waits = self.waiting_for
            values["waiting_for"] = None if waits is None else [w.to_json() for w in waits]
        if self.release_lease:
            values |= {"lease_owner": None, "lease_expires_at": None}
        return values


_PLAIN_COLUMNS = (
    "output",
    "resume",
    "wake_at",
    "checkpoint_id",
    "cancel_requested",
    "pause_requested",
    "finished_at",
)


@dataclass(frozen=True, kw_only=True)
class NewRun:
    """What `insert` needs to create a run."""

    id: str
    workflow: str
    definition_version: str
    input: Any
    input_hash: str
    idempotency_key: str | None = None
    #: Claim the new run for this worker in the same statement (a local worker with room).
    claim_for: str | None = None
    lease_ttl_s: float = 0.0
    #: For a fork: the checkpoint (already in the new run's thread) to continue from.
    checkpoint_id: str | None = None
    #: For a fork: the run it was forked from.
    forked_from: str | None = None
    #: For a child run: the run that started it (told when it ends).
    parent_id: str | None = None
    #: The caller's LangGraph config and context (`Run.config`, `Run.context`).
    config: dict[str, Any] | None = None
    context: Any = None


def insert_row_in(db: Database, conn: Connection, new: NewRun) -> tuple[Run, bool]:
    """Insert the run's row, or find the run its idempotency key already started.

    Raises:
        IdempotencyConflict: The key started a run with a different input.
    """
    claimed = new.claim_for is not None

    def build() -> Any:
        # Built once per database (and per claimed/queued shape), then only bound.
        now = db.now()
        columns = (
            "id",
            "workflow",
            "definition_version",
            "input",
            "input_hash",
            "idempotency_key",
            "checkpoint_id",
            "forked_from",
            "parent_id",
            "config",
            "context",
        )
        values: dict[str, Any] = {c: bindparam(c, type_=runs.c[c].type) for c in columns}
        values |= {"status": RunStatus.QUEUED.value, "created_at": now, "updated_at": now}
        if claimed:
            values |= {
                "status": RunStatus.RUNNING.value,
                "lease_owner": bindparam("lease_owner"),
                "lease_epoch": 1,
                "lease_expires_at": now + bindparam("ttl"),
                "attempts": 1,
            }
        return (
            db.insert(runs)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[runs.c.idempotency_key])
            .returning(runs)
        )

    params = {
        "id": new.id,
        "workflow": new.workflow,
        "definition_version": new.definition_version,
        "input": new.input,
        "input_hash": new.input_hash,
        "idempotency_key": new.idempotency_key,
        "checkpoint_id": new.checkpoint_id,
        "forked_from": new.forked_from,
        "parent_id": new.parent_id,
        "config": new.config,
        "context": new.context,
        "lease_owner": new.claim_for,
        "ttl": new.lease_ttl_s,
    }
    stmt = db.statement(f"runs.insert.{claimed}", build)
    bound = params if claimed else _without(params, "lease_owner", "ttl")
    row = conn.execute(stmt, bound).mappings().first()
    if row is not None:
        return Run.from_row(row), True
    existing = (
        (conn.execute(select(runs).where(runs.c.idempotency_key == new.idempotency_key)))
        .mappings()
        .one()
    )
    run = Run.from_row(existing)
    if run.input_hash != new.input_hash or run.workflow != new.workflow:
        raise errors.IdempotencyConflict(new.idempotency_key or "", run.id)
    return run, False


async def get(db: Database, run_id: str) -> Run | None:
    """The run with this id, or None."""
    statement = db.statement(
        "runs.get", lambda: select(runs).where(runs.c.id == bindparam("run_id"))
    )
    row = await db.read_point(
        lambda conn: conn.execute(statement, {"run_id": run_id}).mappings().first()
    )
    return None if row is None else Run.from_row(row)


async def get_many(db: Database, run_ids: Collection[str]) -> dict[str, Run]:
    """The runs with these ids, in one query."""
    if not run_ids:
        return {}
    rows = await db.rows(select(runs).where(runs.c.id.in_(list(run_ids))))
    return {row["id"]: Run.from_row(row) for row in rows}


def _without(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in keys}


def _encode_cursor(run: Run) -> str:
    raw = json.dumps([run.created_ts, run.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(created, int | float) or not isinstance(run_id, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise errors.ValidationFailed(
            "cursor", [{"pointer": "/cursor", "message": "not a cursor returned by list_runs"}]
        ) from exc
    return float(created), run_id


async def list_page(
    db: Database,
    *,
    statuses: Collection[RunStatus] = (),
    workflow: str | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> RunPage:
    """A page of runs, newest first, in one indexed query (keyset pagination)."""
    if not 1 <= limit <= MAX_PAGE:
        raise errors.ValidationFailed(
            "limit", [{"pointer": "/limit", "message": f"must be between 1 and {MAX_PAGE}"}]
        )
    query = select(runs)
    if statuses:
        query = query.where(runs.c.status.in_([s.value for s in statuses]))
    if workflow is not None:
        query = query.where(runs.c.workflow == workflow)
    # Callers pass datetimes (microseconds); stored times are floats: compare half a
    # microsecond early so a run's own created_at matches it.
    if created_after is not None:
        query = query.where(runs.c.created_at >= created_after - HALF_MICROSECOND)
    if created_before is not None:
        query = query.where(runs.c.created_at < created_before - HALF_MICROSECOND)
    if cursor is not None:
        created, run_id = _decode_cursor(cursor)
        # A row-value comparison: both databases seek the index to the cursor, where an OR
        # of the two cases would be a filter applied to every newer run first.
        query = query.where(tuple_(runs.c.created_at, runs.c.id) < tuple_(created, run_id))
    query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit + 1)
    rows = [Run.from_row(r) for r in await db.rows(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return RunPage(runs=tuple(rows), next_cursor=_encode_cursor(rows[-1]) if more else None)


def compare_and_set_in(
    db: Database,
    conn: Connection,
    run_id: str,
    *,
    action: str,
    allowed: Collection[RunStatus],
    change: Change,
    seen_version: int | None = None,
    fence: Fence | None = None,
    claim_for: str | None = None,
    lease_ttl_s: float = 0.0,
    cancel_wins: bool = False,
) -> Run:
    """The compare-and-set of one transition, in the caller's write transaction; the run after.

    Only the row: what follows a change (events, totals, telling a parent, notifying
    workers) is `storage.lifecycle`'s.

    Raises:
        RunNotFound: No such run.
        TransitionConflict: The run's status or version did not match.
        LeaseLost: ``fence`` no longer holds the lease.
    """
    values = change.columns()
    status = change.status
    claimed = claim_for is not None and status is RunStatus.QUEUED
    shape = _Shape(
        columns=tuple(sorted(k for k in values if k != "status")),
        statuses=tuple(sorted(s.value for s in allowed)),
        checks_version=seen_version is not None,
        fenced=fence is not None,
        claimed=claimed,
        cancel_wins=cancel_wins,
        target=RunStatus.RUNNING.value
        if claimed
        else (status.value if isinstance(status, RunStatus) else None),
    )
    params: dict[str, Any] = {"run_id": run_id, **{f"set_{c}": values[c] for c in shape.columns}}
    if seen_version is not None:
        params["seen_version"] = seen_version
    if fence is not None:
        params |= {"fence_owner": fence.owner, "fence_epoch": fence.epoch}
    if claimed:
        params |= {"claim_for": claim_for, "ttl": lease_ttl_s}
    row = conn.execute(_transition_statement(db, shape), params).mappings().first()
    if row is None:
        _explain_conflict(conn, run_id, action, seen_version, fence)
    return Run.from_row(row)


@dataclass(frozen=True)
class _Shape:
    """What distinguishes one transition statement from another (not the values bound)."""

    columns: tuple[str, ...]
    statuses: tuple[str, ...]
    checks_version: bool
    fenced: bool
    claimed: bool
    cancel_wins: bool
    target: str | None


def _transition_statement(db: Database, shape: _Shape) -> Any:
    def build() -> Any:
        now = db.now()
        # CAS on (id, status, version[, lease]); the primary key makes it a point update.
        conditions = [runs.c.id == bindparam("run_id"), runs.c.status.in_(shape.statuses)]
        if shape.checks_version:
            conditions.append(runs.c.version == bindparam("seen_version"))
        if shape.fenced:
            conditions.append(runs.c.lease_owner == bindparam("fence_owner"))
            conditions.append(runs.c.lease_epoch == bindparam("fence_epoch"))
        new_values: dict[str, Any] = {
            c: bindparam(f"set_{c}", type_=runs.c[c].type) for c in shape.columns
        }
        if shape.claimed:
            new_values |= {
                "lease_owner": bindparam("claim_for"),
                "lease_epoch": runs.c.lease_epoch + 1,
                "lease_expires_at": now + bindparam("ttl"),
                "attempts": runs.c.attempts + 1,
            }
        if shape.target is not None:
            new_values |= _status_values(
                RunStatus(shape.target), now, cancel_wins=shape.cancel_wins
            )
        return (
            update(runs)
            .where(*conditions)
            .values(**new_values, version=runs.c.version + 1, updated_at=now)
            .returning(runs)
        )

    # Built once per shape and database, then only bound.
    return db.statement(f"runs.transition{shape!r}", build)


def _explain_conflict(
    conn: Connection, run_id: str, action: str, seen_version: int | None, fence: Fence | None
) -> NoReturn:
    """Raise the error that says why a transition matched no row."""
    current = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
    if current is None:
        raise errors.RunNotFound(run_id)
    if fence is not None and (
        current["lease_owner"] != fence.owner or current["lease_epoch"] != fence.epoch
    ):
        raise errors.LeaseLost(run_id, fence.epoch)
    reason = ""
    if seen_version is not None and current["version"] != seen_version:
        reason = "It changed while the request was being made."
    raise errors.TransitionConflict(run_id, action, current["status"], reason)


def _status_values(status: RunStatus, now: Any, *, cancel_wins: bool) -> dict[str, Any]:
    """Column values for a change to ``status``; a timer is cleared unless the run waits."""
    timer: dict[str, Any] = {} if status is RunStatus.WAITING else {"wake_at": None}
    finished = now if status.terminal else None
    if not cancel_wins:
        plain = {"status": status.value, **timer}
        return plain | {"finished_at": now} if status.terminal else plain
    # A cancel requested meanwhile (while the step ran, or the worker was stopping) wins:
    # the canceller was told yes, so the run must end cancelled.
    requested = runs.c.cancel_requested.is_(True)
    return {
        "status": case((requested, RunStatus.CANCELLED.value), else_=status.value),
        "finished_at": case((requested, now), else_=finished),
        **timer,
    }


def fence_checkpoint(
    db: Database,
    conn: Connection,
    fence: Fence,
    *,
    checkpoint_id: str | None,
    lease_ttl_s: float,
) -> None:
    """Inside a checkpoint write: prove the lease is held, and record progress.

    Also extends the lease (a checkpoint is as good as a heartbeat) and drops consumed
    resume values, which the checkpoint now holds. None of these columns is indexed, so
    PostgreSQL updates the row in place (HOT), without new entries in the table's indexes.

    Raises:
        LeaseLost: Another worker holds the run now; the caller must roll back.
    """
    with_id = checkpoint_id is not None

    def build() -> Any:
        # Point update by primary key; matches only while (owner, epoch) still hold the lease.
        values: dict[str, Any] = {
            "lease_expires_at": db.now() + bindparam("ttl"),
            "resume": None,
        }
        if with_id:
            values["checkpoint_id"] = bindparam("checkpoint_id")
        return (
            update(runs)
            .where(
                runs.c.id == bindparam("run_id"),
                runs.c.lease_owner == bindparam("owner"),
                runs.c.lease_epoch == bindparam("epoch"),
                runs.c.status == RunStatus.RUNNING.value,
            )
            .values(**values)
        )

    params: dict[str, Any] = {
        "run_id": fence.run_id,
        "owner": fence.owner,
        "epoch": fence.epoch,
        "ttl": lease_ttl_s,
    }
    if with_id:
        params["checkpoint_id"] = checkpoint_id
    statement = db.raw(f"runs.fence_checkpoint.{with_id}", build)
    if db.execute_raw(conn, statement, params) != 1:
        raise errors.LeaseLost(fence.run_id, fence.epoch)


def claim_rows_in(
    db: Database,
    conn: Connection,
    *,
    owner: str,
    workflows: Collection[str],
    limit: int,
    lease_ttl_s: float,
    versions: Collection[str] | None = None,
) -> list[Run]:
    """Claim up to ``limit`` queued runs of ``workflows``, oldest first, under a new lease epoch.

    With ``versions``, only runs started on one of those definition versions: a worker
    never executes a run on a graph other than the one it started on. Only the rows
    (`storage.lifecycle.claim` records the events).
    """
    if limit <= 0 or not workflows or (versions is not None and not versions):
        return []
    now = db.now()
    # Oldest queued first, via ix_runs_status_created_at_id. On SQLite the writer's
    # BEGIN IMMEDIATE serialises claims; PostgreSQL adds FOR UPDATE SKIP LOCKED.
    candidates = (
        select(runs.c.id)
        .where(runs.c.status == RunStatus.QUEUED.value, runs.c.workflow.in_(list(workflows)))
        .order_by(runs.c.created_at, runs.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # SQLite: the writer's BEGIN IMMEDIATE
    )
    if versions is not None:
        candidates = candidates.where(runs.c.definition_version.in_(list(versions)))
    stmt = (
        update(runs)
        .where(runs.c.id.in_(candidates.scalar_subquery()))
        .values(
            status=RunStatus.RUNNING.value,
            lease_owner=owner,
            lease_epoch=runs.c.lease_epoch + 1,
            lease_expires_at=now + lease_ttl_s,
            attempts=runs.c.attempts + 1,
            version=runs.c.version + 1,
            updated_at=now,
        )
        .returning(runs)
    )
    claimed = [Run.from_row(r) for r in (conn.execute(stmt)).mappings()]
    claimed.sort(key=lambda r: (r.created_ts, r.id))  # RETURNING keeps no order
    return claimed


@dataclass(frozen=True, kw_only=True)
class HeldLease:
    """A lease a heartbeat renewed."""

    run_id: str
    epoch: int
    cancel_requested: bool
    pause_requested: bool


def _held(row: Any) -> HeldLease:
    return HeldLease(
        run_id=row.id,
        epoch=row.lease_epoch,
        cancel_requested=bool(row.cancel_requested),
        pause_requested=bool(row.pause_requested),
    )


async def stop_requests(db: Database, *, owner: str) -> list[HeldLease]:
    """The runs ``owner`` executes that were asked to cancel or pause (index ``lease_owner``).

    A worker polls this between heartbeats, so a request made through another process takes
    effect within a poll interval rather than a heartbeat interval.
    """
    statement = db.statement(
        "runs.stop_requests",
        lambda: select(
            runs.c.id, runs.c.lease_epoch, runs.c.cancel_requested, runs.c.pause_requested
        ).where(
            runs.c.lease_owner == bindparam("owner"),
            runs.c.status == RunStatus.RUNNING.value,
            or_(runs.c.cancel_requested.is_(True), runs.c.pause_requested.is_(True)),
        ),
    )
    rows = await db.read_point(lambda conn: conn.execute(statement, {"owner": owner}).all())
    return [_held(r) for r in rows]


async def heartbeat(
    db: Database, *, owner: str, run_ids: Collection[str], lease_ttl_s: float
) -> list[HeldLease]:
    """Extend the leases ``owner`` holds on ``run_ids`` (the runs it is executing).

    Leases of runs the worker holds but no longer executes are left to expire, so the
    reaper gives those runs back to the queue.
    """
    if not run_ids:
        return []

    def job(conn: Connection) -> list[HeldLease]:
        # Primary-key lookups, limited to this worker's leases.
        # Rows locked in one global order, as group commits lock them: two transactions
        # locking several runs never deadlock.
        held = db.locked_in_key_order(
            [
                runs.c.id.in_(list(run_ids)),
                runs.c.lease_owner == owner,
                runs.c.status == RunStatus.RUNNING.value,
            ],
            runs.c.id,
        )
        stmt = (
            update(runs)
            .where(*held)
            .values(lease_expires_at=db.now() + lease_ttl_s)
            .returning(
                runs.c.id, runs.c.lease_epoch, runs.c.cancel_requested, runs.c.pause_requested
            )
        )
        return [_held(r) for r in conn.execute(stmt)]

    return await db.write(job)


async def queued_on_version(
    db: Database, workflow: str, definition_version: str, *, limit: int = 1000
) -> list[Run]:
    """Queued runs of one workflow version, oldest first."""
    rows = await db.rows(
        select(runs)
        .where(
            runs.c.status == RunStatus.QUEUED.value,
            runs.c.workflow == workflow,
            runs.c.definition_version == definition_version,
        )
        .order_by(runs.c.created_at, runs.c.id)
        .limit(limit)
    )
    return [Run.from_row(r) for r in rows]


def _by_parent(run: Run) -> bytes:
    return (run.parent_id or "").encode()


def exists_in(conn: Connection, run_id: str) -> bool:
    """Whether a run with this id exists (inside a transaction the caller holds)."""
    return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def expire_rows_in(db: Database, conn: Connection) -> list[Run]:
    """Give runs whose lease expired back to the queue (cancelled if cancel was requested).

    Only the rows; `storage.lifecycle.requeue_expired` does what follows.
    """
    now = db.now()
    # ix_runs_status_created_at_id: the running runs (no more than the workers execute),
    # those past their expiry. One statement
    # (PostgreSQL: over rows no other reaper or heartbeat holds), so two reapers neither
    # deadlock nor take a run twice.
    expired = (
        select(runs.c.id)
        .where(runs.c.status == RunStatus.RUNNING.value, runs.c.lease_expires_at < now)
        .with_for_update(skip_locked=True)
    )
    cancelling = runs.c.cancel_requested.is_(True)
    found = (
        conn.execute(
            update(runs)
            .where(runs.c.id.in_(expired.scalar_subquery()))
            .values(
                status=case((cancelling, RunStatus.CANCELLED.value), else_=RunStatus.QUEUED.value),
                finished_at=case((cancelling, now), else_=runs.c.finished_at),
                lease_owner=None,
                lease_expires_at=None,
                version=runs.c.version + 1,
                updated_at=now,
            )
            .returning(runs)
        )
        .mappings()
        .all()
    )
    return [Run.from_row(r) for r in found]
