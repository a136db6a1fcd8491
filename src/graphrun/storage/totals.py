"""Finished runs counted by status, workflow and finish day, kept as runs finish and go.

Retention stats sum ``run_totals`` (statuses x workflows x days x 16 shards: thousands of
rows) instead of a million runs. Each change is made in the transaction that changes the
runs: a run finishing adds itself, with what it holds (`footprint`); a retried run takes
itself out as it leaves its finished status; the purge takes out what it deletes, and
compaction what it frees. Rows are sums: runs going out are counted in a row of their own
(shard ``-``, negative), so only the sum over a (status, workflow, day) means anything.
Rows are written in key order, so two transactions never wait on each other's rows in
opposite orders.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, literal, select, tuple_

from .records import RunStatus
from .schema import run_totals, runs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .database import Database

__all__ = ("AMOUNTS", "DAY", "FINISHED", "add", "counted", "drop_empty", "finish_day", "take_out")

DAY = 86400.0
#: The statuses counted here: a run is in the table exactly while it has one of them.
FINISHED = tuple(s.value for s in RunStatus if s.terminal)
#: The footprint columns, summed.
AMOUNTS = ("n_checkpoints", "n_writes", "n_events", "n_signals", "checkpoint_bytes")


def finish_day(db: Database, finished_at: Any) -> Any:
    """The UTC day (since the epoch) of a finish time, as SQL: ``floor(t / 86400)``.

    PostgreSQL's cast to integer rounds, SQLite's truncates (the same as floor for the
    positive times here; its ``floor`` is not always compiled in).
    """
    days = finished_at / DAY
    return db.floor_int(days)


def counted(*extra: Any) -> Any:
    """A SELECT of ``runs`` with what `take_out` needs of each run (and ``extra``)."""
    return select(
        runs.c.id,
        runs.c.status,
        runs.c.workflow,
        runs.c.finished_at,
        *(runs.c[c] for c in AMOUNTS),
        *extra,
    )


def _count_in(db: Database, many: bool) -> Any:
    def build() -> Any:
        day = finish_day(db, runs.c.finished_at).label("day")
        shard = func.substr(runs.c.id, 36, 1).label("shard")
        wanted = (
            runs.c.id.in_(bindparam("ids", expanding=True))
            if many
            else (runs.c.id == bindparam("run_id"))
        )
        summed = (
            select(
                runs.c.status,
                runs.c.workflow,
                day,
                shard,
                func.count().label("runs"),
                *(func.coalesce(func.sum(runs.c[c]), 0).label(c) for c in AMOUNTS),
            )
            # The status as an expression no index holds: SQLite would otherwise read the
            # runs by a status index, all of the finished ones, instead of by their ids.
            .where(wanted, (runs.c.status + literal("")).in_([literal(s) for s in FINISHED]))
            .group_by(runs.c.status, runs.c.workflow, day, shard)
            .order_by(runs.c.status, runs.c.workflow, day, shard)
        )
        insert = db.insert(run_totals).from_select(
            ["status", "workflow", "day", "shard", "runs", *AMOUNTS], summed
        )
        return insert.on_conflict_do_update(
            index_elements=["status", "workflow", "day", "shard"],
            set_={c: run_totals.c[c] + insert.excluded[c] for c in ("runs", *AMOUNTS)},
        )

    return build


def add(db: Database, conn: Connection, run_ids: Collection[str]) -> None:
    """Count the finished ones of ``run_ids`` in, as they are now (after their footprint)."""
    if len(run_ids) == 1:
        (run_id,) = run_ids
        # Every run's end runs this: compiled once, it skips SQLAlchemy's execution path.
        single = db.raw("totals.add", _count_in(db, many=False))
        db.execute_raw(conn, single, {"run_id": run_id})
    elif run_ids:
        many = db.statement("totals.add*", _count_in(db, many=True))
        conn.execute(many, {"ids": sorted(run_ids)})


def take_out(db: Database, conn: Connection, picked: Iterable[Any]) -> None:
    """Count out runs about to be deleted or changed: one upsert per (status, workflow, day).

    ``picked`` are their rows as read by `counted`. They are taken out of one row per
    (status, workflow, day), shard ``-``: a purge batch changes a few dozen rows, not one
    per run.
    """
    groups: dict[tuple[str, str, int], list[int]] = {}
    for run in picked:
        # A finished run without a footprint was never counted in: finished by a worker of
        # a graphrun before the totals (during an upgrade), after the migration counted.
        if run.status not in FINISHED or run.n_checkpoints is None:
            continue
        # The same IEEE division and floor as `finish_day` in SQL.
        key = (run.status, run.workflow, math.floor(run.finished_at / DAY))
        summed = groups.setdefault(key, [0] * (1 + len(AMOUNTS)))
        summed[0] -= 1
        for k, column in enumerate(AMOUNTS, start=1):
            summed[k] -= getattr(run, column) or 0
    if not groups:
        return
    insert = db.statement("totals.take_out", lambda: _upsert(db))
    conn.execute(
        insert,
        [
            {"status": s, "workflow": w, "day": d, "shard": "-"}
            | dict(zip(("runs", *AMOUNTS), v, strict=True))
            for (s, w, d), v in sorted(groups.items())
        ],
    )


def _upsert(db: Database) -> Any:
    insert = db.insert(run_totals)
    return insert.on_conflict_do_update(
        index_elements=["status", "workflow", "day", "shard"],
        set_={c: run_totals.c[c] + insert.excluded[c] for c in ("runs", *AMOUNTS)},
    )


def drop_empty(conn: Connection, now: float) -> int:
    """Delete the rows of past (status, workflow, day)s no run is counted in; how many.

    After a purge: the runs of an old day are gone, its rows sum to nothing. Only days
    before yesterday (a margin for clocks): no run finishes on them any more, so no row is
    deleted while another transaction adds to it. (A retry only takes away from a day it
    still counts the run in, so such a day does not sum to nothing meanwhile.)
    """
    key = (run_totals.c.status, run_totals.c.workflow, run_totals.c.day)
    empty = (
        select(*key)
        .where(run_totals.c.day < int(now // DAY) - 1)
        .group_by(*key)
        .having(func.sum(run_totals.c.runs) == 0)
    )
    return int(conn.execute(delete(run_totals).where(tuple_(*key).in_(empty))).rowcount)
