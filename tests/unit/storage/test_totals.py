"""run_totals: sums that only the purge of past days empties, and only counted runs leave."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select

from graphrun.storage import Database, totals
from graphrun.storage.schema import run_totals

DAY = 86400.0


def row(status: str, day: int, shard: str, runs: int) -> dict[str, Any]:
    key = {"status": status, "workflow": "app.flow", "day": day, "shard": shard}
    return key | {"runs": runs} | dict.fromkeys(totals.AMOUNTS, runs)


async def stored(db: Database) -> list[tuple[str, int, str, int]]:
    rows = await db.rows(select(run_totals).order_by(run_totals.c.day, run_totals.c.shard))
    return [(r["status"], r["day"], r["shard"], r["runs"]) for r in rows]


async def test_only_past_days_summing_to_nothing_are_dropped(db: Database) -> None:
    now = time.time()
    today = int(now // DAY)
    rows = [
        row("completed", today - 10, "a", 1),  # purged whole: dropped
        row("completed", today - 10, "-", -1),
        row("completed", today - 9, "a", 2),  # one run left: kept
        row("completed", today - 9, "-", -1),
        row("failed", today, "b", 1),  # failed and retried today: a run may still finish
        row("failed", today, "-", -1),  # into this day, so it stays
    ]

    def job(conn: Any) -> int:
        conn.execute(insert(run_totals), rows)
        return totals.drop_empty(conn, now)

    assert await db.write(job) == 2
    assert await stored(db) == [
        ("completed", today - 9, "-", -1),
        ("completed", today - 9, "a", 2),
        ("failed", today, "-", -1),
        ("failed", today, "b", 1),
    ]


async def test_a_finished_run_never_counted_in_is_not_counted_out(db: Database) -> None:
    finished = time.time() - 3 * DAY
    counted = SimpleNamespace(
        status="completed",
        workflow="app.flow",
        finished_at=finished,
        **dict.fromkeys(totals.AMOUNTS, 1),
    )
    # Finished by a worker of a graphrun before the totals: no footprint on its row.
    uncounted = SimpleNamespace(
        status="completed",
        workflow="app.flow",
        finished_at=finished,
        **dict.fromkeys(totals.AMOUNTS),
    )
    await db.write(lambda conn: totals.take_out(db, conn, [counted, uncounted]))
    assert await stored(db) == [("completed", int(finished // DAY), "-", -1)]
