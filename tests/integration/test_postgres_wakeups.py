"""On PostgreSQL a worker hears of queued runs at once (LISTEN/NOTIFY), not at its next poll."""

from __future__ import annotations

import asyncio

import pytest

from graphrun import RunStatus
from graphrun.storage.backends.pg_listen import QueuedRunListener
from tests.conftest import EngineFactory

#: Far longer than any wait below: only a notification can make the worker look in time.
NEVER_POLL = {"poll_interval_s": 3600.0}


@pytest.mark.postgres_only
async def test_a_run_queued_by_another_process_is_claimed_without_polling(
    make_engine: EngineFactory,
) -> None:
    async with (
        make_engine("linear", **NEVER_POLL) as worker,
        make_engine("linear", run_worker=False) as api,
    ):
        listener = worker.listener
        assert isinstance(listener, QueuedRunListener)
        await asyncio.wait_for(listener.connected.wait(), 30)
        runs = [await api.start("linear.ten", {"x": 0}) for _ in range(5)]
        done = [await api.wait(r.id, timeout=20) for r in runs]
    assert [r.status for r in done] == [RunStatus.COMPLETED] * 5


@pytest.mark.postgres_only
async def test_a_resume_made_by_another_process_wakes_the_worker(
    make_engine: EngineFactory,
) -> None:
    async with (
        make_engine("gated", **NEVER_POLL) as worker,
        make_engine("gated", run_worker=False) as api,
    ):
        listener = worker.listener
        assert isinstance(listener, QueuedRunListener)
        await asyncio.wait_for(listener.connected.wait(), 30)
        run = await api.start("gated.quick", {"x": 100})
        waiting = await api.wait(run.id, timeout=20)
        assert waiting.status is RunStatus.WAITING
        await api.resume(run.id, {"ok": True})
        done = await api.wait(run.id, timeout=20)
    assert done.status is RunStatus.COMPLETED
