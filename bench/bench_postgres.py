"""PostgreSQL scale-out benchmark (issue 5): worker processes against raw LangGraph.

Workload: 1000 runs of the 10-node linear graph (``x + 1`` per node), ``durability="sync"``.
Modes, each in one run of this script on a fresh database:

- ``sqlite``: one process, graphrun on SQLite, all runs started at once (the embedded
  default, for comparison);
- ``postgres xN``: N ``graphrun worker`` processes (N = 1, 2, 4) on one PostgreSQL database;
  an observer process queues all runs at once and waits for them; claims/s counts the
  ``running`` events per second between the first and the last;
- ``raw``: LangGraph with ``AsyncPostgresSaver`` (a psycopg pool of 20), 200 runs at once,
  on the same PostgreSQL (issue 5 quotes about 58 runs/s for it on this machine).

Latencies are per run, from its creation to its end (database clock). PostgreSQL shares this
machine's two cores with every worker process: see the README for what that means.

    .venv/bin/python bench/bench_postgres.py            # full run, a few minutes
    .venv/bin/python bench/bench_postgres.py --quick    # 200 runs, for a smoke check
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).parent
APP = HERE / "apps" / "benchflow"
NODES = 10
ADMIN_URL = os.environ.get(
    "GRAPHRUN_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class FreshDatabase:
    """A PostgreSQL database created for one mode and dropped after it."""

    def __enter__(self) -> str:
        self.name = f"graphrun_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        return f"{ADMIN_URL.rsplit('/', 1)[0]}/{self.name}"

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)]


async def sqlite_mode(runs: int) -> dict[str, Any]:
    from graphrun import Engine, Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/b.db", concurrency=max(100, runs))
        async with Engine(apps=[APP], settings=settings) as engine:
            await engine.wait((await engine.start("benchflow.linear", {"x": 0})).id)
            t0 = time.perf_counter()
            started = await asyncio.gather(
                *(engine.start("benchflow.linear", {"x": 0}) for _ in range(runs))
            )
            done = await asyncio.gather(*(engine.wait(r.id) for r in started))
            total = time.perf_counter() - t0
    latencies = [(r.finished_at - r.created_at).total_seconds() for r in done]  # type: ignore[operator]
    return {"rate": runs / total, "latencies": latencies, "claims": None}


async def postgres_mode(url: str, runs: int, workers: int) -> dict[str, Any]:
    from graphrun import Engine, Settings

    env = {**os.environ, "GRAPHRUN_DATABASE_URL": url, "PYTHONPATH": str(HERE.parent / "src")}
    async with Engine(settings=Settings(database_url=url, run_worker=False)) as observer:
        procs = [
            await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "graphrun", "worker", "--app", str(APP)),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]

        async def all_started() -> bool:
            return len(await _workers(url)) >= workers

        async def warmed() -> bool:
            return (await observer.get(warm.id)).status.value == "completed"

        async def all_done() -> bool:
            return not (await observer.list_runs(status=["queued", "running"], limit=1)).runs

        try:
            await until(all_started, 0.2)
            warm = await observer.start("benchflow.linear", {"x": 0})
            await until(warmed, 0.05)
            t0 = time.perf_counter()
            started = []
            for batch in range(0, runs, 100):
                started += await asyncio.gather(
                    *(
                        observer.start("benchflow.linear", {"x": 0})
                        for _ in range(min(100, runs - batch))
                    )
                )
            await until(all_done, 0.05)
            total = time.perf_counter() - t0
            done = [await observer.get(r.id) for r in started]
            claims = []
            for r in done:
                claims += [
                    e.created_at.timestamp()
                    for e in await observer.runs.events(r.id)
                    if e.data.get("status") == "running"
                ]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                await proc.wait()
    assert all(r.output == {"x": NODES} for r in done)
    latencies = [(r.finished_at - r.created_at).total_seconds() for r in done]  # type: ignore[operator]
    return {
        "rate": runs / total,
        "latencies": latencies,
        "claims": len(claims) / max(1e-9, max(claims) - min(claims)),
    }


async def until(check: Callable[[], Awaitable[bool]], every: float) -> None:
    """Poll ``check`` until it holds: other processes change that state, nothing to await."""
    while not await check():  # noqa: ASYNC110
        await asyncio.sleep(every)


async def _workers(url: str) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        try:
            cursor = await conn.execute("SELECT id FROM workers")
        except psycopg.errors.UndefinedTable:
            return []
        return await cursor.fetchall()


async def raw_mode(url: str, runs: int) -> dict[str, Any]:
    sys.path.insert(0, str(APP))
    from benchflow.flows import build_linear
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(
        url, max_size=20, kwargs={"autocommit": True, "row_factory": dict_row}, open=False
    ) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await saver.setup()
        graph = build_linear().compile(checkpointer=saver)

        async def one() -> float:
            t0 = time.perf_counter()
            config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
            out = await graph.ainvoke({"x": 0}, config, durability="sync")
            assert out == {"x": NODES}
            return time.perf_counter() - t0

        for _ in range(5):
            await one()
        t0 = time.perf_counter()
        latencies = await asyncio.gather(*(one() for _ in range(runs)))
        total = time.perf_counter() - t0
    return {"rate": runs / total, "latencies": list(latencies), "claims": None}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 runs per mode")
    args = parser.parse_args()
    runs = 200 if args.quick else 1000
    rows: list[tuple[str, int, dict[str, Any]]] = []
    rows.append(("graphrun sqlite, 1 process", runs, await sqlite_mode(runs)))
    for workers in (1, 2, 4):
        with FreshDatabase() as url:
            result = await postgres_mode(url, runs, workers)
        rows.append((f"graphrun postgres, {workers} worker(s)", runs, result))
    with FreshDatabase() as url:
        raw = await raw_mode(url, 200)
    rows.append(("raw LangGraph + AsyncPostgresSaver", 200, raw))
    print()
    print("| mode | runs | runs/s | p50 ms | p99 ms | claims/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, count, r in rows:
        p50, p99 = percentiles(r["latencies"])
        claims = f"{r['claims']:.0f}" if r["claims"] else "-"
        print(
            f"| {name} | {count} | {r['rate']:.1f} | {p50 * 1000:.0f} | {p99 * 1000:.0f} | {claims} |"
        )
    best = max(r["rate"] for name, _, r in rows if "postgres," in name)
    print(f"\nbest graphrun on PostgreSQL / raw: {best / raw['rate']:.2f}x   (target >= 2x)")


if __name__ == "__main__":
    asyncio.run(main())
