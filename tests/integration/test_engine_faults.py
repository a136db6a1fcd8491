"""Faults around the edges of an execution: cancelled callers, shutdown with a grace period,
a database locked past its busy timeout, repeated interrupts in one node."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from types import ModuleType

import pytest

from graphrun import RunStatus
from tests.conftest import EngineFactory


@pytest.mark.sqlite_only
async def test_a_start_whose_caller_is_cancelled_still_runs(
    make_engine: EngineFactory, db_url: str
) -> None:
    async with make_engine("linear") as engine:
        # Hold the write lock so the start's insert is in flight when its caller gives up.
        foreign = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        foreign.execute("BEGIN IMMEDIATE")
        starting = asyncio.create_task(engine.start("linear.ten", {"x": 0}))
        await asyncio.sleep(0.2)  # no event marks "insert queued"; validation takes microseconds
        starting.cancel()
        foreign.execute("ROLLBACK")
        foreign.close()
        with pytest.raises(asyncio.CancelledError):
            await starting
        # The insert commits once the lock is free; nothing signals that to the caller.
        for _ in range(500):
            runs = (await engine.list_runs()).runs
            if runs:
                break
            await asyncio.sleep(0.01)
        (run,) = runs
        done = await engine.wait(run.id, timeout=30)
        assert done.status is RunStatus.COMPLETED
        assert done.output == {"x": 10}


async def test_a_graceful_stop_keeps_the_lease_of_a_draining_run(
    make_engine: EngineFactory, gated: ModuleType
) -> None:
    timings = {"lease_ttl_s": 1.0, "heartbeat_interval_s": 0.2}
    a = make_engine("gated", worker_id="A", **timings)
    await a.open()
    run = await a.start("gated.blocking", {"x": 0})
    assert await asyncio.to_thread(gated.ENTERED.wait, 30)
    async with make_engine("gated", worker_id="B", **timings) as b:
        closing = asyncio.create_task(a.close(grace_s=30))
        # Several lease lifetimes pass while A drains: B must not take the run over.
        await asyncio.sleep(3 * timings["lease_ttl_s"])
        assert (await b.get(run.id)).lease_owner == "A"
        gated.GATE.set()
        await closing
        done = await b.get(run.id)
        assert done.status is RunStatus.COMPLETED
        assert done.attempts == 1


@pytest.mark.sqlite_only
async def test_a_lock_held_past_busy_timeout_delays_a_run_but_does_not_fail_it(
    make_engine: EngineFactory, db_url: str, tmp_path: Path
) -> None:
    path = db_url.removeprefix("sqlite:///")
    effects = tmp_path / "effects"
    value = {"x": 0, "effects": str(effects), "delay": 0.05}
    async with make_engine("linear", busy_timeout_s=0.2, lease_ttl_s=5.0) as engine:
        run = await engine.start("linear.ten", value)
        while not effects.exists():  # written by the first node, in a thread of this process
            await asyncio.sleep(0.005)
        foreign = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        foreign.execute("BEGIN IMMEDIATE")  # another process holds the write lock...
        asyncio.get_running_loop().call_later(1.0, foreign.execute, "ROLLBACK")  # ...for 1 s
        done = await engine.wait(run.id, timeout=60)
        foreign.close()
        assert done.status is RunStatus.COMPLETED, done.error
        assert done.output == {**value, "x": 10}


async def test_a_second_interrupt_in_one_node_replaces_the_first(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("plain") as engine:
        run = await engine.wait((await engine.start("plain.twice", {})).id, timeout=30)
        assert [w.prompt for w in run.waiting_for] == ["first?"]
        await engine.resume(run.id, "A")
        run = await engine.wait(run.id, timeout=30)
        assert [w.prompt for w in run.waiting_for] == ["second?"]
        await engine.resume(run.id, "B")
        done = await engine.wait(run.id, timeout=30)
        assert done.output == {"first": "A", "second": "B"}
