"""Retention: the policy's purge deletes only aged finished runs, with all that is theirs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from graphrun import Engine, RunStatus
from graphrun.api import create_app
from graphrun.config import RetentionPolicy
from graphrun.storage import retention
from graphrun.storage.schema import checkpoint_writes, checkpoints, run_events, runs, signals
from tests.conftest import APPS, EngineFactory, finish_days_ago

if str(APPS / "primitives") not in sys.path:
    sys.path.insert(0, str(APPS / "primitives"))

DAY = 86400.0


async def age(engine: Engine, run_ids: list[str], days: float) -> None:
    """Make runs look finished ``days`` ago."""
    await finish_days_ago(engine, run_ids, days)


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
        before = await engine.retention.stats()

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
        dry = await engine.retention.purge(dry_run=True)
        still = await engine.list_runs(limit=100)
        real = await engine.retention.purge()
        left = await engine.list_runs(limit=100)
    assert len(still.runs) == 8  # the dry run deleted nothing
    assert dry.dry_run
    assert dry.runs_by_status == {"completed": 4, "cancelled": 1}
    assert dry.rows == real.rows  # it reported exactly what the purge then deleted
    assert real.rows["signals"] == 1
    assert {r.id for r in left.runs} == set(kept)


async def test_retention_routes_need_the_admin_scope(make_engine: EngineFactory) -> None:
    async with make_engine("linear") as engine:
        tokens = {s: (await engine.keys.create(s, [s])).token for s in ("write", "admin")}
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
        report = await engine.retention.purge()
        mode = await engine.db.read(lambda c: c.exec_driver_sql("PRAGMA auto_vacuum").scalar())
    assert mode == 2  # INCREMENTAL, set when the database was created
    assert report.rows["runs"] == 40
    assert report.reclaimed_pages > 0


async def counted(engine: Engine) -> dict[str, dict[str, int]]:
    """Every table's rows and the checkpoint bytes, counted by reading them all."""

    def job(conn: Any) -> dict[str, dict[str, int]]:
        found = {
            name: {"rows": conn.execute(select(func.count()).select_from(t)).scalar_one()}
            for name, t in (
                ("checkpoint_writes", checkpoint_writes),
                ("checkpoints", checkpoints),
                ("run_events", run_events),
                ("signals", signals),
                ("runs", runs),
            )
        }
        found["checkpoints"]["bytes"] = (
            conn.execute(
                select(
                    func.sum(
                        func.length(checkpoints.c.checkpoint) + func.length(checkpoints.c.metadata)
                    )
                )
            ).scalar_one()
            + conn.execute(select(func.sum(func.length(checkpoint_writes.c.value)))).scalar_one()
        )
        return found

    return await engine.db.read(job)


async def test_stats_from_counts_kept_at_write_time_equal_a_full_count(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("linear", "primitives") as engine:
        done = await finished(engine, "linear.ten", 6, {"x": 0})
        await age(engine, done[:2], 40)
        waiting = [
            await engine.start("primitives.mailbox", {"count": 2, "items": []}) for _ in range(3)
        ]
        waiting = [await engine.wait(r.id, timeout=30) for r in waiting]
        await engine.signal(waiting[0].id, "item", 1)  # a live run with a consumed signal
        await engine.signal(waiting[1].id, "note", "x")  # and one with a queued signal
        await engine.wait(waiting[0].id, timeout=30)
        await engine.cancel(waiting[2].id)  # a cancelled run with events, counted as it ended
        stats = await engine.retention.stats()
        truth = await counted(engine)
    assert stats.tables == truth
    assert stats.tables["checkpoints"]["bytes"] > 0
    rows = {(r["status"], r["age"]): r for r in stats.runs}
    assert rows[("completed", "<90d")]["runs"] == 2
    assert rows[("completed", "<1d")]["runs"] == 4
    assert rows[("waiting", "<1d")]["runs"] == 2
    assert rows[("completed", "<90d")]["rows"]["checkpoints"] > 0
    assert stats.next_purge["runs"] == 2
    assert stats.next_purge["checkpoints"] == rows[("completed", "<90d")]["rows"]["checkpoints"]


async def test_old_completed_runs_can_keep_only_their_last_checkpoint(
    make_engine: EngineFactory,
) -> None:
    policy = RetentionPolicy(keep_last_checkpoint_after=2)
    async with make_engine("linear", retention=policy) as engine:
        old = await finished(engine, "linear.ten", 4, {"x": 0})
        # A fork's thread holds copies of its source's checkpoints, with the same ids: here
        # its source's last, then one of its own (the update).
        fork = await engine.fork(old[0], update={"x": 100})
        old.append((await engine.wait(fork.id, timeout=30)).id)
        recent = await finished(engine, "linear.ten", 2, {"x": 0})
        await age(engine, old, 3)  # past 2 days: compacted; not past 30: kept
        before = {r: await engine.runs.history(r) for r in old + recent}
        report = await retention.purge(engine.db, policy, batch_size=10)  # all in one batch
        again = await engine.retention.purge()
        after = {r: await engine.runs.history(r) for r in old + recent}
        outputs = [(await engine.get(r)).output for r in old]
        fork = await engine.wait((await engine.fork(old[0])).id, timeout=30)
        stats = await engine.retention.stats()
        truth = await counted(engine)
    assert report.rows["runs"] == 0
    assert report.compacted_runs == 5
    assert report.rows["checkpoints"] == sum(len(before[r]) - 1 for r in old)
    assert report.bytes > 0
    assert again.compacted_runs == 0  # nothing left to do
    for run_id in old:  # the fork (last) is compacted in the same batch as its source
        assert len(before[run_id]) > 1
        assert [c.id for c in after[run_id]] == [before[run_id][0].id]  # the last one, kept
        assert after[run_id][0].state == before[run_id][0].state
    for run_id in recent:
        assert after[run_id] == before[run_id]
    assert all(o is not None for o in outputs)
    assert fork.status is RunStatus.COMPLETED  # a fork from the kept checkpoint still works
    assert stats.tables == truth  # the counts were recounted


async def test_a_retried_run_leaves_the_failed_totals_and_is_counted_again_when_it_ends(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    async with make_engine("flaky") as engine:
        run = await engine.start("flaky.once", {"marker": str(marker), "log": str(tmp_path / "l")})
        assert (await engine.wait(run.id, timeout=30)).status is RunStatus.FAILED
        failed = await engine.retention.stats()
        marker.touch()
        await engine.retry(run.id)
        assert (await engine.wait(run.id, timeout=30)).status is RunStatus.COMPLETED
        done = await engine.retention.stats()
        truth = await counted(engine)

    def by_status(stats: retention.RetentionStats) -> dict[str, int]:
        return {r["status"]: r["runs"] for r in stats.runs}

    assert by_status(failed) == {"failed": 1}
    assert by_status(done) == {"completed": 1}  # not failed any more, not counted twice
    assert done.tables == truth


async def test_a_purge_deletes_store_items_whose_ttl_ran_out(make_engine: EngineFactory) -> None:
    async with make_engine(run_worker=False) as engine:
        await engine.store.aput(("app", "cache"), "old", {"v": 1}, ttl=-1)
        await engine.store.aput(("app", "cache"), "new", {"v": 2}, ttl=60)
        await engine.retention.purge()
        assert await store_sweep(engine) == 0  # nothing expired is left
        assert [i.key for i in await engine.store.asearch(("app",))] == ["new"]


async def store_sweep(engine: Engine) -> int:
    from graphrun.storage.store import sweep_expired

    return await sweep_expired(engine.db)
