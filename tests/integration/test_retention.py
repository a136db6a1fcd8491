"""Retention: the policy's purge deletes only aged finished runs, with all that is theirs."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from graphrun import Engine, RunStatus
from graphrun.api import create_app
from graphrun.config import RetentionPolicy
from graphrun.storage import retention
from graphrun.storage.schema import checkpoint_writes, checkpoints, run_events, runs, signals
from tests.conftest import APPS, EngineFactory

if str(APPS / "primitives") not in sys.path:
    sys.path.insert(0, str(APPS / "primitives"))

DAY = 86400.0


async def age(engine: Engine, run_ids: list[str], days: float) -> None:
    """Make runs look finished ``days`` ago."""
    then = time.time() - days * DAY

    def job(conn: Any) -> None:
        conn.execute(update(runs).where(runs.c.id.in_(run_ids)).values(finished_at=then))

    await engine.db.write(job)


async def orphans(engine: Engine) -> dict[str, int]:
    """Rows whose run is gone, per table."""

    def job(conn: Any) -> dict[str, int]:
        ids = select(runs.c.id)
        found = {}
        for name, column in (
            ("checkpoints", checkpoints.c.thread_id),
            ("checkpoint_writes", checkpoint_writes.c.thread_id),
            ("run_events", run_events.c.run_id),
            ("signals", signals.c.run_id),
        ):
            found[name] = conn.execute(
                select(func.count()).select_from(column.table).where(column.not_in(ids))
            ).scalar_one()
        return found

    return await engine.db.read(job)


async def finished(engine: Engine, workflow: str, count: int, input: dict[str, Any]) -> list[str]:
    started = [await engine.start(workflow, input) for _ in range(count)]
    done = [await engine.wait(r.id, timeout=60) for r in started]
    assert all(r.status is RunStatus.COMPLETED for r in done)
    return [r.id for r in done]


async def test_a_purge_beside_200_live_runs_deletes_only_aged_finished_runs(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("linear", "primitives", concurrency=300) as engine:
        old = await finished(engine, "linear.ten", 30, {"x": 0})
        recent = await finished(engine, "linear.ten", 5, {"x": 0})
        await age(engine, old, 40)  # past the 30 days of completed runs
        live = [
            await engine.start("primitives.mailbox", {"count": 1, "items": []}) for _ in range(200)
        ]
        live = [await engine.wait(r.id, timeout=60) for r in live]
        assert all(r.status is RunStatus.WAITING for r in live)
        await age(engine, [r.id for r in live], 400)  # even an old finished_at never counts
        before = await engine.retention_stats()

        async def finish_half() -> None:  # live traffic while the purge deletes
            for run in live[:100]:
                await engine.signal(run.id, "item", 1)

        purged, _ = await asyncio.gather(
            retention.purge(engine.db, engine.settings.retention, batch_size=7),
            finish_half(),
        )
        after = {r.id: r for r in (await engine.list_runs(limit=500)).runs}
        left = await orphans(engine)
    assert before.next_purge["runs"] == 30
    assert purged.rows["runs"] == 30
    assert purged.batches >= 5  # 30 runs in batches of 7
    assert purged.rows["checkpoints"] > 30
    assert purged.rows["run_events"] > 30
    assert not set(old) & set(after)
    assert set(recent) <= set(after)
    assert {r.id for r in live} <= set(after)  # non-terminal runs purged: 0
    assert left == {"checkpoints": 0, "checkpoint_writes": 0, "run_events": 0, "signals": 0}
    print(f"purged {purged.rows} in {purged.batches} batches beside 200 live runs; orphans {left}")


async def test_a_dry_run_changes_nothing_and_reports_what_a_purge_then_deletes(
    make_engine: EngineFactory,
) -> None:
    policy = RetentionPolicy(workflows=(("linear.ten", "completed", 365.0),))
    async with make_engine("linear", "primitives", "declared", retention=policy) as engine:
        kept = await finished(engine, "linear.ten", 3, {"x": 0})  # kept a year by its override
        doomed = await finished(engine, "declared.double", 4, {"n": 1})
        await age(engine, kept + doomed, 40)
        cancelled = await engine.start("primitives.mailbox", {"count": 1, "items": []})
        cancelled = await engine.wait(cancelled.id, timeout=30)
        await engine.signal(cancelled.id, "note", "x")  # a signal left in the mailbox
        await engine.cancel(cancelled.id)
        await age(engine, [cancelled.id], 8)  # past the 7 days of cancelled runs
        dry = await engine.purge(dry_run=True)
        still = await engine.list_runs(limit=100)
        real = await engine.purge()
        left = await engine.list_runs(limit=100)
    assert len(still.runs) == 8  # the dry run deleted nothing
    assert dry.dry_run
    assert dry.runs_by_status == {"completed": 4, "cancelled": 1}
    assert dry.rows == real.rows  # it reported exactly what the purge then deleted
    assert real.rows["signals"] == 1
    assert {r.id for r in left.runs} == set(kept)


async def test_retention_routes_need_the_admin_scope(make_engine: EngineFactory) -> None:
    async with make_engine("linear") as engine:
        tokens = {s: (await engine.api_keys.create(s, [s])).token for s in ("write", "admin")}
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            def auth(scope: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {tokens[scope]}"}

            denied = await client.get("/retention", headers=auth("write"))
            stats = await client.get("/retention", headers=auth("admin"))
            dry = await client.post(
                "/retention/apply", json={"dry_run": True}, headers=auth("admin")
            )
            bad = await client.post("/retention/apply", json={"dry": 1}, headers=auth("admin"))
    assert denied.status_code == 403
    assert stats.status_code == 200
    assert set(stats.json()) == {"runs", "tables", "next_purge"}
    assert dry.json()["dry_run"] is True
    assert bad.status_code == 422


@pytest.mark.sqlite_only
async def test_a_purge_gives_sqlite_pages_back_to_the_file_system(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("linear") as engine:
        runs_ = await finished(engine, "linear.ten", 40, {"x": 0, "effects": ""})
        await age(engine, runs_, 40)
        report = await engine.purge()
        mode = await engine.db.read(lambda c: c.exec_driver_sql("PRAGMA auto_vacuum").scalar())
    assert mode == 2  # INCREMENTAL, set when the database was created
    assert report.rows["runs"] == 40
    assert report.reclaimed_pages > 0
