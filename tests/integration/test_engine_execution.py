"""Execution under concurrency: sync steps off the loop, cancelling a running step, fencing
a worker that lost its lease, releasing runs on shutdown, engines that share nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import func, select, update

from graphrun import RunStatus, WorkflowNotFound
from graphrun.storage import Database
from graphrun.storage.schema import checkpoints, runs
from tests.conftest import APPS, EngineFactory, entered


async def count_checkpoints(db: Database, run_id: str) -> int:
    query = select(func.count()).select_from(checkpoints).where(checkpoints.c.thread_id == run_id)
    return await db.read(lambda conn: conn.execute(query).scalar_one())


async def test_a_blocking_sync_node_does_not_stop_other_runs(
    make_engine: EngineFactory, gated: ModuleType
) -> None:
    async with make_engine("gated") as engine:
        slow = await engine.start("gated.blocking", {"x": 0})
        await entered(gated)
        quick = await engine.wait((await engine.start("gated.quick", {"x": 0})).id, timeout=30)
        assert quick.status is RunStatus.COMPLETED
        assert quick.output == {"x": 10}
        assert (await engine.get(slow.id)).status is RunStatus.RUNNING
        gated.GATE.set()
        done = await engine.wait(slow.id, timeout=30)
        assert done.status is RunStatus.COMPLETED
        assert done.output == {"x": 3}


async def test_cancel_of_a_running_run_stops_it_at_its_current_step(
    make_engine: EngineFactory, gated: ModuleType
) -> None:
    async with make_engine("gated") as engine:
        run = await engine.start("gated.blocking", {"x": 0})
        await entered(gated)
        requested = await engine.cancel(run.id)
        assert requested.cancel_requested or requested.status is RunStatus.CANCELLED
        cancelled = await engine.wait(run.id, timeout=30)
        assert cancelled.status is RunStatus.CANCELLED
        assert cancelled.lease_owner is None
        gated.GATE.set()
        nodes = [e.data["node"] for e in await engine.runs.events(run.id) if e.kind == "node"]
        assert nodes == ["before"]


async def test_a_worker_that_lost_its_lease_cannot_write_a_checkpoint_or_status(
    make_engine: EngineFactory, gated: ModuleType
) -> None:
    # Heartbeats far apart: the fence in the write itself must stop the old worker.
    async with make_engine("gated", lease_ttl_s=60.0, heartbeat_interval_s=30.0) as engine:
        run = await engine.start("gated.blocking", {"x": 0})
        await entered(gated)
        before = await count_checkpoints(engine.db, run.id)

        def take_over(conn):  # type: ignore[no-untyped-def]
            conn.execute(
                update(runs)
                .where(runs.c.id == run.id)
                .values(lease_owner="another-worker", lease_epoch=runs.c.lease_epoch + 1)
            )

        await engine.db.write(take_over)
        assert engine.worker is not None
        task = engine.worker.task_of(run.id)
        assert task is not None
        gated.GATE.set()
        await asyncio.wait_for(task, 30)
        current = await engine.get(run.id)
        assert (current.status, current.lease_owner) == (RunStatus.RUNNING, "another-worker")
        assert await count_checkpoints(engine.db, run.id) == before
        nodes = [e.data["node"] for e in await engine.runs.events(run.id) if e.kind == "node"]
        assert "block" not in nodes


async def test_shutdown_releases_running_runs_and_the_next_engine_continues_them(
    make_engine: EngineFactory, gated: ModuleType
) -> None:
    async with make_engine("gated") as engine:
        run = await engine.start("gated.blocking", {"x": 0})
        await entered(gated)
    released = None
    async with make_engine("gated", run_worker=False) as observer:
        released = await observer.get(run.id)
    assert released.status is RunStatus.QUEUED
    assert released.lease_owner is None
    assert released.checkpoint_id is not None
    gated.GATE.set()
    async with make_engine("gated") as engine:
        done = await engine.wait(run.id, timeout=30)
        assert done.status is RunStatus.COMPLETED
        assert done.output == {"x": 3}
        assert done.attempts == 2
        nodes = [e.data["node"] for e in await engine.runs.events(run.id) if e.kind == "node"]
        assert nodes == ["before", "block", "after"]


async def test_two_engines_in_one_process_share_nothing(tmp_path: Path) -> None:
    from graphrun import Engine, Settings

    one = Engine(
        apps=[APPS / "linear"], settings=Settings(database_url=f"sqlite:///{tmp_path}/one.db")
    )
    two = Engine(
        apps=[APPS / "flaky"], settings=Settings(database_url=f"sqlite:///{tmp_path}/two.db")
    )
    async with one, two:
        assert one.workflows.loaded_names() == ["linear.ten"]
        assert two.workflows.loaded_names() == ["flaky.once"]
        with pytest.raises(WorkflowNotFound):
            await one.start("flaky.once", {"marker": "m", "log": "l"})
        run = await one.start("linear.ten", {"x": 0})
        assert (await one.wait(run.id, timeout=30)).output == {"x": 10}
        assert (await two.list_runs()).runs == ()
