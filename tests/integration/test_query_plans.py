"""Every query a list, a claim, a timer or a purge runs is served by an index: plans, read.

The statements are the real ones, captured as the engine sends them; each is then explained
on the same database with the same parameters (SQLite ``EXPLAIN QUERY PLAN``; PostgreSQL
``EXPLAIN`` with sequential scans priced out, so a usable index is always chosen). A plan that
reads all of ``runs`` or ``checkpoints`` fails the test.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import event

from graphrun import Engine, RunStatus
from graphrun.storage import lifecycle, retention, timers
from graphrun.storage.schema import runs
from tests.conftest import APPS, EngineFactory, finish_days_ago

if str(APPS / "primitives") not in sys.path:
    sys.path.insert(0, str(APPS / "primitives"))

#: The tables that grow with the number of runs: never read whole.
BIG = ("runs", "checkpoints", "checkpoint_writes")
SQLITE_FULL_SCAN = re.compile(rf"^SCAN ({'|'.join(BIG)})\b(?!.*USING)")
POSTGRES_FULL_SCAN = re.compile(rf"Seq Scan on ({'|'.join(BIG)})\b")


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SELECT, UPDATE and DELETE statements the engine sends meanwhile, with parameters."""
    seen: list[tuple[str, Any]] = []
    db = engine.db
    targets = {id(e): e for e in (db._writer_engine, db._reader_engine) if e is not None}

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        head = statement.lstrip().split(None, 1)[0].upper()
        if head in ("SELECT", "UPDATE", "DELETE", "WITH"):
            seen.append((statement, parameters))

    for target in targets.values():
        event.listen(target, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for target in targets.values():
            event.remove(target, "before_cursor_execute", record)


def full_scans(engine: Engine, db_url: str, statements: list[tuple[str, Any]]) -> list[str]:
    """The plan lines of ``statements`` that read a big table whole."""
    found = []
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            for sql, params in statements:
                for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params or ()):
                    if SQLITE_FULL_SCAN.search(row[3]):
                        found.append(f"{row[3]}  <-  {sql.split()[:12]}")
        finally:
            conn.close()
        return found
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("SET enable_seqscan = off")
        for sql, params in statements:
            for (line,) in conn.execute("EXPLAIN " + sql, params):
                if POSTGRES_FULL_SCAN.search(line):
                    found.append(f"{line}  <-  {sql.split()[:12]}")
    return found


async def test_lists_claims_timers_and_purges_use_indexes(
    make_engine: EngineFactory, db_url: str
) -> None:
    async with make_engine("linear", "primitives") as engine:
        done = [await engine.start("linear.ten", {"x": i}) for i in range(5)]
        for run in done:
            await engine.wait(run.id, timeout=30)
        waiting = await engine.start("primitives.sleeper", {"seconds": 3600})
        waiting = await engine.wait(waiting.id, timeout=30)
        assert waiting.status is RunStatus.WAITING
        with captured(engine) as statements:
            page = await engine.list_runs(limit=2)
            await engine.list_runs(limit=2, cursor=page.next_cursor)
            await engine.list_runs(status="completed", limit=2)
            await engine.list_runs(status="completed", workflow="linear.ten", limit=2)
            page = await engine.list_runs(workflow="linear.ten", limit=2)
            await engine.list_runs(workflow="linear.ten", limit=2, cursor=page.next_cursor)
            await engine.get(done[0].id)
            await engine.runs.history(done[0].id, limit=3)
            await lifecycle.claim(
                engine.db, owner="probe", workflows=["linear.ten"], limit=5, lease_ttl_s=5
            )
            await timers.next_due(engine.db)
            await timers.wake_due(engine.db)
            await retention.purge(engine.db, engine.settings.retention, dry_run=True)

            await engine.retention.stats()

            await finish_days_ago(engine, [done[0].id], 400)
            report = await retention.purge(engine.db, engine.settings.retention)
        assert report.rows["runs"] == 1
        assert len(statements) > 15
        scans = full_scans(engine, db_url, statements)
    assert scans == [], "\n".join(scans)


async def test_the_plan_check_sees_a_full_scan(make_engine: EngineFactory, db_url: str) -> None:
    async with make_engine("linear", run_worker=False) as engine:
        await engine.start("linear.ten", {"x": 1})
        with captured(engine) as statements:
            # no index holds input_hash: this one reads every run
            await engine.db.rows(runs.select().where(runs.c.input_hash == "x"))
        scans = full_scans(engine, db_url, statements)
    assert len(scans) == 1, scans
