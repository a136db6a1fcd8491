"""Retention and query efficiency at a million runs (issue 7), on SQLite and on PostgreSQL.

Data: ``--runs`` finished runs (1,000,000 by default) over ten workflows, written in the order
they were created (UUIDv7 ids, as the engine's), finished at times spread over the last 120 days (85% completed, 10% failed, 5% cancelled), each with its four
status events, and the per-day totals the engine keeps as runs finish; a tenth of them with checkpoints (4 of about 700 bytes, and 2 writes), 2% with
a signal. Loaded with the database's bulk path (``COPY`` on PostgreSQL, one transaction on
SQLite, indexes built after), through the schema the engine migrates to. Each finished run
carries what it holds, as the engine records when a run ends.

Measured with graphrun's own storage functions (what the HTTP routes call), in one run:

- a list page of 50 runs with a status and a workflow filter, walked by cursor (keyset);
- a run by id;
- retention stats (runs by status and age, what they hold, the next purge);
- the purge of what the default policy ages out (completed 30 days, failed 90, cancelled 7),
  in batches of 500 runs with all their rows, in runs per second;
- the database size before and after (PostgreSQL: also after a plain ``VACUUM``).

Each is compared with a naive per-run loop on the same data: a page as ids then one query per
run; stats as one query per run (timed on a sample, scaled to all runs); a purge deleting one
run (and its rows) per transaction (on a sample of the runs the purge deletes).

    .venv/bin/python bench/bench_retention.py                 # 1,000,000 runs, ~15 minutes
    .venv/bin/python bench/bench_retention.py --runs 100000   # a quicker look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, delete, func, select, tuple_

from graphrun.config import RetentionPolicy
from graphrun.storage import Database, RunStatus, open_database, retention, totals
from graphrun.storage import runs as runs_store
from graphrun.storage.schema import (
    checkpoint_writes,
    checkpoints,
    run_events,
    run_totals,
    signals,
)
from graphrun.storage.schema import (
    runs as runs_table,
)

sys.path.insert(0, str(Path(__file__).parent))
from bench_postgres import FreshDatabase

DAY = 86400.0
WORKFLOWS = [f"bench.flow{k}" for k in range(10)]
STATUSES = (("completed", 0.85), ("failed", 0.10), ("cancelled", 0.05))
CHECKPOINT_SHARE = 0.10
CHECKPOINTS_PER_RUN = 4
WRITES_PER_RUN = 2
SIGNAL_SHARE = 0.02
BATCH = 20_000  # rows generated per bulk insert
TARGETS = {"list": 10.0, "get": 2.0, "stats": 500.0, "purge_pg": 20_000.0}

RUN_COLUMNS = [
    "id",
    "workflow",
    "definition_version",
    "status",
    "input",
    "input_hash",
    "output",
    "error",
    "version",
    "lease_epoch",
    "attempts",
    "checkpoint_id",
    "created_at",
    "updated_at",
    "finished_at",
    "n_checkpoints",
    "n_writes",
    "n_events",
    "n_signals",
    "checkpoint_bytes",
    "cancel_requested",
    "pause_requested",
]
# Every column of these two, in table order (the rows below are built in that order).
CHECKPOINT_COLUMNS = [c.name for c in checkpoints.columns]
WRITE_COLUMNS = [c.name for c in checkpoint_writes.columns]
EVENT_COLUMNS = ["run_id", "kind", "data", "created_at"]
SIGNAL_COLUMNS = ["run_id", "name", "payload", "created_at", "consumed_at"]


# -- data ------------------------------------------------------------------------------


def uuid7(at: float, rng: random.Random) -> str:
    """A UUIDv7 for time ``at``, as `graphrun.ids.RunIdFactory` makes them."""
    value = (int(at * 1000) << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
    return str(uuid.UUID(int=value | rng.getrandbits(62)))


def generate(count: int, now: float, seed: int = 7) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Rows for ``count`` finished runs, in chunks: {table: rows}."""
    rng = random.Random(seed)
    body = rng.randbytes(640)
    meta = json.dumps({"source": "loop", "step": 3, "parents": {}}).encode()
    value = rng.randbytes(80)
    chunk: dict[str, list[tuple[Any, ...]]] = {
        "runs": [],
        "checkpoints": [],
        "checkpoint_writes": [],
        "run_events": [],
        "signals": [],
    }
    by_day: dict[tuple[Any, ...], list[int]] = {}  # what the engine keeps in run_totals
    weights = [w for _, w in STATUSES]
    names = [s for s, _ in STATUSES]
    for n in range(count):
        # In creation order, as runs are written: ids are UUIDv7 of the creation time.
        finished = now - 120 * DAY * (1 - (n + rng.random()) / count)
        created = finished - rng.uniform(1, 600)
        run_id = uuid7(created, rng)
        status = rng.choices(names, weights)[0]
        n_checkpoints = n_writes = size = 0
        last = None
        if rng.random() < CHECKPOINT_SHARE:
            parent = None
            for k in range(CHECKPOINTS_PER_RUN):
                cid = f"{int(created * 1e6):016x}-{k:04d}"
                chunk["checkpoints"].append(
                    (run_id, "", cid, parent, "msgpack", body, "json", meta, created + k)
                )
                parent = last = cid
                size += len(body) + len(meta)
            for k in range(WRITES_PER_RUN):
                chunk["checkpoint_writes"].append(
                    (run_id, "", last, f"task{k}", k, "out", "msgpack", value, "")
                )
                size += len(value)
            n_checkpoints, n_writes = CHECKPOINTS_PER_RUN, WRITES_PER_RUN
        n_signals = 0
        if rng.random() < SIGNAL_SHARE:
            chunk["signals"].append(
                (run_id, "approve", json.dumps({"by": "bench"}), created + 1, created + 2)
            )
            n_signals = 1
        for k, kind in enumerate(("status", "status", "status", "status")):
            state = ("queued", "running", "waiting", status)[k]
            chunk["run_events"].append((run_id, kind, json.dumps({"status": state}), created + k))
        output = json.dumps({"ok": True, "n": n}) if status == "completed" else None
        error = (
            json.dumps({"type": "StepFailed", "message": "card declined"})
            if status == "failed"
            else None
        )
        chunk["runs"].append(
            (
                run_id,
                WORKFLOWS[n % len(WORKFLOWS)],
                "v1",
                status,
                json.dumps({"order": n, "customer": f"c{n % 5000}"}),
                f"{n:064x}",
                output,
                error,
                5,
                1,
                1,
                last,
                created,
                finished,
                finished,
                n_checkpoints,
                n_writes,
                4,
                n_signals,
                size,
                False,
                False,
            )
        )
        key = (status, WORKFLOWS[n % len(WORKFLOWS)], math.floor(finished / DAY), run_id[35])
        summed = by_day.setdefault(key, [0] * 6)
        for k, amount in enumerate((1, n_checkpoints, n_writes, 4, n_signals, size)):
            summed[k] += amount
        if len(chunk["runs"]) >= BATCH:
            yield chunk
            chunk = {k: [] for k in chunk}
    chunk["run_totals"] = [(*key, *summed) for key, summed in by_day.items()]
    yield chunk


COLUMNS = {
    "runs": RUN_COLUMNS,
    "run_totals": [
        "status",
        "workflow",
        "day",
        "shard",
        "runs",
        "n_checkpoints",
        "n_writes",
        "n_events",
        "n_signals",
        "checkpoint_bytes",
    ],
    "checkpoints": CHECKPOINT_COLUMNS,
    "checkpoint_writes": WRITE_COLUMNS,
    "run_events": EVENT_COLUMNS,
    "signals": SIGNAL_COLUMNS,
}
TABLES = {
    "runs": runs_table,
    "run_totals": run_totals,
    "checkpoints": checkpoints,
    "checkpoint_writes": checkpoint_writes,
    "run_events": run_events,
    "signals": signals,
}


def _secondary_indexes() -> list[Any]:
    return [i for t in TABLES.values() for i in t.indexes]


def load(url: str, count: int, now: float) -> float:
    """Bulk-load ``count`` runs (indexes dropped, then built again); seconds it took."""
    started = time.perf_counter()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for index in _secondary_indexes():
            index.drop(conn)
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        for chunk in generate(count, now):
            for table, rows in chunk.items():
                cols = COLUMNS[table]
                db.executemany(
                    f"INSERT INTO {table} ({', '.join(cols)}) "
                    f"VALUES ({', '.join('?' * len(cols))})",
                    rows,
                )
        db.execute("COMMIT")
        db.close()
    else:
        with psycopg.connect(url) as pg:
            for chunk in generate(count, now):
                for table, rows in chunk.items():
                    if not rows:
                        continue
                    cols = ", ".join(COLUMNS[table])
                    with pg.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            pg.commit()
    with engine.begin() as conn:
        for index in _secondary_indexes():
            index.create(conn)
    engine.dispose()
    if not url.startswith("sqlite"):
        # What autovacuum would have done by the time a million runs had finished.
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


# -- measuring -------------------------------------------------------------------------


async def timed(call: Callable[[], Awaitable[Any]], times: int) -> tuple[list[float], list[Any]]:
    """Milliseconds of each of ``times`` calls, and their results."""
    spent, results = [], []
    for _ in range(times):
        t0 = time.perf_counter()
        results.append(await call())
        spent.append((time.perf_counter() - t0) * 1000)
    return spent, results


def p50(values: list[float]) -> float:
    return statistics.median(values)


def file_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def size_of(db: Database, url: str) -> int:
    """The database's bytes on disk (SQLite: the file and its WAL)."""
    if url.startswith("sqlite"):
        return await asyncio.to_thread(file_size, Path(url.removeprefix("sqlite:///")))
    size = select(func.pg_database_size(func.current_database()))
    return int(await db.read(lambda conn: conn.execute(size).scalar_one()))


async def measure(url: str, count: int) -> dict[str, Any]:
    now = time.time()
    db = await open_database(url)  # the schema, as the engine migrates it
    await db.close()
    load_s = load(url, count, now)
    db = await open_database(url)
    rng = random.Random(11)
    out: dict[str, Any] = {"load_s": load_s}
    try:
        out["size_before"] = await size_of(db, url)
        ids = [
            r["id"]
            for r in await db.rows(
                select(runs_table.c.id).where(runs_table.c.workflow == WORKFLOWS[3]).limit(5000)
            )
        ]
        # A list page: one status and one workflow, walked by cursor ten pages deep from the
        # newest run, and from one 60 days back; for ten such pairs.
        pairs = [(s, w) for s in (RunStatus.COMPLETED, RunStatus.FAILED) for w in WORKFLOWS[:5]]
        page_ms: list[float] = []
        naive_ms: list[float] = []
        middle = await db.rows(
            select(runs_table)
            .where(runs_table.c.created_at < now - 60 * DAY)
            .order_by(runs_table.c.created_at.desc())
            .limit(1)
        )
        deep = runs_store._encode_cursor(runs_store.Run.from_row(middle[0]))
        for status, workflow, start in [(s, w, c) for s, w in pairs for c in (None, deep)]:
            cursor = start
            for _ in range(10):
                t0 = time.perf_counter()
                page = await runs_store.list_page(
                    db, statuses=[status], workflow=workflow, limit=50, cursor=cursor
                )
                page_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                same = await naive_page(db, status.value, workflow, cursor)
                naive_ms.append((time.perf_counter() - t0) * 1000)
                assert [r.id for r in same] == [r.id for r in page.runs]
                cursor = page.next_cursor
                if cursor is None:
                    break
        out["list"], out["list_naive"] = p50(page_ms), p50(naive_ms)
        get_ms, found = await timed(lambda: runs_store.get(db, rng.choice(ids)), 500)
        assert all(found)
        out["get"] = p50(get_ms)
        policy = RetentionPolicy()
        stats_ms, stats = await timed(lambda: retention.stats(db, policy, now=now), 5)
        out["stats"] = p50(stats_ms)
        out["next_purge"] = stats[-1].next_purge
        out["stats_naive"] = await naive_stats(db, count, ids[:2000])
        # A naive purge, one run per transaction, on a sample of what the purge deletes.
        doomed = [
            r["id"]
            for r in await db.rows(
                select(runs_table.c.id).where(retention.purgeable(policy, now)).limit(2000)
            )
        ]
        t0 = time.perf_counter()
        for run_id in doomed:
            await db.write(lambda conn, run_id=run_id: naive_delete(db, conn, run_id))
        out["purge_naive"] = len(doomed) / (time.perf_counter() - t0)
        report = await retention.purge(db, policy, now=now)
        out["purged"] = report.rows["runs"]
        out["purged_rows"] = sum(report.rows.values())
        out["purge"] = report.rows["runs"] / report.seconds
        out["purge_s"] = report.seconds
        out["size_after"] = await size_of(db, url)
        if db.dialect == "postgresql":
            await vacuum(url)
            out["size_vacuumed"] = await size_of(db, url)
        left = await retention.stats(db, policy, now=now)
        out["left"] = left.tables["runs"]["rows"]
        out["left_due"] = left.next_purge["runs"]
    finally:
        await db.close()
    return out


async def naive_page(
    db: Database, status: str, workflow: str, cursor: str | None
) -> list[runs_store.Run]:
    """The same page in the N+1 shape: the ids, then one query per run."""
    query = select(runs_table.c.id).where(
        runs_table.c.status == status, runs_table.c.workflow == workflow
    )
    if cursor is not None:
        created, last = runs_store._decode_cursor(cursor)
        query = query.where(
            tuple_(runs_table.c.created_at, runs_table.c.id) < tuple_(created, last)
        )
    query = query.order_by(runs_table.c.created_at.desc(), runs_table.c.id.desc()).limit(50)
    found = []
    for row in await db.rows(query):
        run = await runs_store.get(db, row["id"])
        assert run is not None
        found.append(run)
    return found


async def naive_stats(db: Database, count: int, sample: list[str]) -> float:
    """Stats as a loop over runs (count and size of each one's rows): ms, scaled to all."""

    def per_run(conn: Any, run_id: str) -> None:
        for table, column in (
            (checkpoints, checkpoints.c.thread_id),
            (checkpoint_writes, checkpoint_writes.c.thread_id),
            (run_events, run_events.c.run_id),
            (signals, signals.c.run_id),
        ):
            conn.execute(select(func.count()).select_from(table).where(column == run_id)).one()
        conn.execute(
            select(func.sum(func.length(checkpoints.c.checkpoint))).where(
                checkpoints.c.thread_id == run_id
            )
        ).one()

    def job(conn: Any) -> None:
        for run_id in sample:
            per_run(conn, run_id)

    t0 = time.perf_counter()
    await db.read(job)
    return (time.perf_counter() - t0) * 1000 * count / len(sample)


def naive_delete(db: Database, conn: Any, run_id: str) -> None:
    """Delete one run and its rows (counted out of the totals, as the purge does)."""
    totals.take_out(db, conn, conn.execute(totals.counted().where(runs_table.c.id == run_id)).all())
    for table, column in (
        (checkpoint_writes, checkpoint_writes.c.thread_id),
        (checkpoints, checkpoints.c.thread_id),
        (run_events, run_events.c.run_id),
        (signals, signals.c.run_id),
        (runs_table, runs_table.c.id),
    ):
        conn.execute(delete(table).where(column == run_id))


async def vacuum(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("VACUUM")


# -- report ----------------------------------------------------------------------------


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def report(count: int, results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{count:,} finished runs; medians; 'naive' is a per-run query loop on the same data")
    names = list(results)
    print(f"{'':<34}" + "".join(f"{n:>20}" for n in names) + "      target")

    def row(label: str, cell: Callable[[dict[str, Any]], str], target: str = "") -> None:
        print(f"{label:<34}" + "".join(f"{cell(results[n]):>20}" for n in names) + f"  {target}")

    row("load (bulk, indexes after)", lambda r: f"{r['load_s']:.0f} s")
    row("list page of 50 (status+wf+cursor)", lambda r: f"{r['list']:.2f} ms", "<= 10 ms")
    row("  naive: ids, then a query per run", lambda r: f"{r['list_naive']:.2f} ms")
    row("  better by", lambda r: f"{1 - r['list'] / r['list_naive']:.0%}", "> 50%")
    row("run by id", lambda r: f"{r['get']:.3f} ms", "<= 2 ms")
    row("retention stats", lambda r: f"{r['stats']:.0f} ms", "<= 500 ms")
    row("  naive: queries per run (scaled)", lambda r: f"{r['stats_naive'] / 1000:,.0f} s")
    row("  better by", lambda r: f"{1 - r['stats'] / r['stats_naive']:.2%}", "> 50%")
    row("purge (batches of 500)", lambda r: f"{r['purge']:,.0f} runs/s", ">= 20,000 on PG")
    row("  runs / rows deleted", lambda r: f"{r['purged']:,} / {r['purged_rows']:,}")
    row("  naive: a run per transaction", lambda r: f"{r['purge_naive']:,.0f} runs/s")
    row("  better by", lambda r: f"{1 - r['purge_naive'] / r['purge']:.0%}", "> 50%")
    row("size before", lambda r: mb(r["size_before"]))
    row("size after the purge", lambda r: mb(r["size_after"]))
    row(
        "size after plain VACUUM",
        lambda r: mb(r["size_vacuumed"]) if "size_vacuumed" in r else "-",
    )
    row("runs left / still due", lambda r: f"{r['left']:,} / {r['left_due']}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    if args.only != "postgres":
        with tempfile.TemporaryDirectory() as tmp:
            print(f"sqlite: loading {args.runs:,} runs ...", flush=True)
            results["sqlite"] = await measure(f"sqlite:///{tmp}/retention.db", args.runs)
    if args.only != "sqlite":
        with FreshDatabase() as url:
            print(f"postgres: loading {args.runs:,} runs ...", flush=True)
            results["postgres"] = await measure(url, args.runs)
    report(args.runs, results)


if __name__ == "__main__":
    asyncio.run(main())
