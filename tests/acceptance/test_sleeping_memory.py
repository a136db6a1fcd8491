"""10,000 sleeping runs cost a process less than 20 MB (issue 4): a sleep is a row, not a task.

The runs are executed up to their ``sleep(3600)`` by this process's worker and left waiting;
RSS is read (after a garbage collection) once the code paths are warm and again when all of
them sleep. The figure is printed; bench/bench_primitives.py reports it with the latencies.
"""

from __future__ import annotations

import asyncio
import gc

import psutil
import pytest

from graphrun import RunStatus
from tests.conftest import EngineFactory

RUNS = 10_000
LIMIT_MB = 20.0


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


@pytest.mark.acceptance
@pytest.mark.timeout(600)
async def test_10000_sleeping_runs_grow_rss_by_less_than_20_mb(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("primitives", poll_interval_s=1.0) as engine:
        for _ in range(50):  # warm every code path up first
            run = await engine.start("primitives.sleeper", {"seconds": 3600})
            await engine.wait(run.id, timeout=60)
        before = rss_mb()
        for _ in range(RUNS):  # keep no records here: only the engine's memory counts
            await engine.start("primitives.sleeper", {"seconds": 3600})
        while (await engine.list_runs(status=["queued", "running"], limit=1)).runs:
            await asyncio.sleep(0.2)  # the worker executes them: poll until none is left
        growth = rss_mb() - before
        waiting = await engine.list_runs(status=RunStatus.WAITING, limit=1)
        worker = engine.worker
        assert worker is not None
        executing = len(worker.active_runs)
    print(f"\n{RUNS:,} sleeping runs: RSS grew {growth:.1f} MB (limit {LIMIT_MB:.0f} MB)")
    assert waiting.runs
    assert executing == 0  # none holds a worker slot
    assert growth < LIMIT_MB
