"""Primitives benchmark (issue 4): memory of sleeping runs, and how fast waits end.

Figures:
- RSS growth of one process holding N sleeping runs (target: < 20 MB for 10,000). The
  runs are started, executed up to their ``sleep(3600)`` and left waiting; RSS is read
  (after a garbage collection) before the first start and once all of them sleep.
- timer lateness: how long after its due time a ``sleep(0.5)`` run is running again
  (target: < 1 s), median and max over the samples;
- cancel latency: from ``cancel()`` of a run whose async node is in flight to the run
  being ``cancelled`` (target: < 1 s), by the executing engine and by another one on the
  same database (the executing worker polls for stop requests every 0.5 s);
- signal latency: from ``signal()`` to the waiting run having completed.
Each part runs in the same process, one after the other; medians over the samples.

    .venv/bin/python bench/bench_primitives.py            # 10,000 sleeping runs
    .venv/bin/python bench/bench_primitives.py --quick    # 1,000, for a smoke check
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil

from graphrun import Engine, Run, RunStatus, Settings

HERE = Path(__file__).parent
APP = HERE / "apps" / "benchflow"


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


async def finished(engine: Engine, run_id: str) -> Run:
    async for _ in engine.runs.watch(run_id, until_finished=True):
        pass
    return await engine.get(run_id)


async def sleeping_memory(engine: Engine, count: int) -> dict[str, float]:
    # Warm up every code path first, so that growth is what the sleeping runs cost.
    warm = [await engine.start("benchflow.napper", {"seconds": 3600}) for _ in range(50)]
    for run in warm:
        await engine.wait(run.id)
    before = rss_mb()
    t0 = time.perf_counter()
    for _ in range(count):  # keep no records here: only the engine's memory counts
        await engine.start("benchflow.napper", {"seconds": 3600})
    while True:
        page = await engine.list_runs(status=["queued", "running"], limit=1)
        if not page.runs:
            break
        await asyncio.sleep(0.2)  # another task executes them: poll the count
    elapsed = time.perf_counter() - t0
    after = rss_mb()
    worker = engine.worker
    return {
        "runs": count,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "growth_mb": after - before,
        "seconds_to_sleep": elapsed,
        "executing_after": len(worker.active_runs) if worker else 0,
    }


async def timer_lateness(engine: Engine, samples: int) -> list[float]:
    late = []
    for _ in range(samples):
        run = await engine.start("benchflow.napper", {"seconds": 0.5})
        waiting = await engine.wait(run.id)
        due = waiting.waiting_for[0].wake_at
        assert due is not None
        events = engine.runs.watch(run.id, until_finished=True)
        async for event in events:
            woke = event.kind == "status" and event.data.get("status") in ("queued", "running")
            if woke and event.created_at >= due:
                late.append((event.created_at - due).total_seconds())
                break
        await finished(engine, run.id)
    return late


async def cancel_latency(
    engine: Engine, samples: int, canceller: Engine | None = None
) -> list[float]:
    """From ``cancel()`` to ``cancelled``; ``canceller`` is another engine on the database."""
    by = canceller or engine
    times = []
    for _ in range(samples):
        run = await engine.start("benchflow.hang", {"x": 0})
        async for event in engine.runs.watch(run.id, until_finished=True):
            if event.kind == "status" and event.data.get("status") == "running":
                break
        await asyncio.sleep(0.05)  # let the node start
        t0 = time.time()
        await by.cancel(run.id)
        done = await engine.wait(run.id)
        # finished_at is the database clock (this machine's): the moment it was cancelled,
        # however late a waiter in another engine would notice.
        assert done.status is RunStatus.CANCELLED, done
        assert done.finished_at is not None
        times.append(done.finished_at.timestamp() - t0)
    return times


async def signal_latency(engine: Engine, samples: int) -> list[float]:
    times = []
    for i in range(samples):
        run = await engine.wait((await engine.start("benchflow.signalled", {"x": 0})).id)
        assert run.status is RunStatus.WAITING, run
        t0 = time.perf_counter()
        await engine.signal(run.id, "go", i)
        done = await engine.wait(run.id)
        times.append(time.perf_counter() - t0)
        assert done.output == {"x": i}, done
    return times


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.1f} ms (max {max(values) * 1000:.1f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 sleeping runs")
    args = parser.parse_args()
    count = 1_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            poll_interval_s=1.0,
            concurrency=100,
        )
        async with Engine(apps=[APP], settings=settings) as engine:
            memory = await sleeping_memory(engine, count)
            late = await timer_lateness(engine, 10)
            cancels = await cancel_latency(engine, 10)
            other = Engine(settings=replace(settings, run_worker=False))
            async with other:
                remote_cancels = await cancel_latency(engine, 10, canceller=other)
            signals = await signal_latency(engine, 20)
    print()
    print("| figure | value | target |")
    print("| --- | --- | --- |")
    print(
        f"| RSS growth, {memory['runs']:,} sleeping runs | {memory['growth_mb']:.1f} MB "
        f"({memory['rss_before_mb']:.0f} -> {memory['rss_after_mb']:.0f} MB; all asleep in "
        f"{memory['seconds_to_sleep']:.1f} s, {memory['executing_after']:.0f} executing) "
        "| < 20 MB |"
    )
    print(f"| timer lateness after due time | {ms(late)} | < 1 s |")
    print(f"| cancel of a running node | {ms(cancels)} | < 1 s |")
    print(f"| same, cancelled by another engine | {ms(remote_cancels)} | < 1 s |")
    print(f"| signal to completed run | {ms(signals)} | |")


if __name__ == "__main__":
    asyncio.run(main())
