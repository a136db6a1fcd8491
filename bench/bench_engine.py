"""Engine benchmark (issue 2): graphrun on SQLite against raw LangGraph + AsyncSqliteSaver.

Workload: a 10-node linear graph (``x + 1`` per node), ``durability="sync"`` on both sides.
Each mode runs in a fresh subprocess so that peak RSS is its own, and the modes alternate
over three rounds so that the shared machine's noise hits raw and graphrun alike. Prints one
table: medians over the rounds.

    .venv/bin/python bench/bench_engine.py            # full run
    .venv/bin/python bench/bench_engine.py --quick    # fewer runs, for a smoke check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
APP = HERE / "apps" / "benchflow"
NODES = 10


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def graphrun_sequential(db: str, runs: int) -> dict[str, Any]:
    from graphrun import Engine, Settings

    settings = Settings(database_url=db, poll_interval_s=1.0)
    async with Engine(apps=[APP], settings=settings) as engine:
        for _ in range(5):  # warm-up
            await engine.wait((await engine.start("benchflow.linear", {"x": 0})).id)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            run = await engine.start("benchflow.linear", {"x": 0})
            run = await engine.wait(run.id)
            times.append(time.perf_counter() - t0)
            assert run.output == {"x": NODES}, run
    return {"times": times}


async def graphrun_concurrent(db: str, runs: int) -> dict[str, Any]:
    from graphrun import Engine, Settings

    settings = Settings(database_url=db, poll_interval_s=1.0, concurrency=max(100, runs))
    async with Engine(apps=[APP], settings=settings) as engine:
        await engine.wait((await engine.start("benchflow.linear", {"x": 0})).id)
        t0 = time.perf_counter()
        started = await asyncio.gather(
            *(engine.start("benchflow.linear", {"x": 0}) for _ in range(runs))
        )
        done = await asyncio.gather(*(engine.wait(r.id) for r in started))
        total = time.perf_counter() - t0
        assert all(r.output == {"x": NODES} for r in done)
    return {"total": total}


async def graphrun_resume(db: str, runs: int) -> dict[str, Any]:
    from graphrun import Engine, RunStatus, Settings

    settings = Settings(database_url=db, poll_interval_s=1.0)
    async with Engine(apps=[APP], settings=settings) as engine:
        times = []
        for i in range(runs + 5):
            run = await engine.wait((await engine.start("benchflow.approval", {"x": 0})).id)
            assert run.status is RunStatus.WAITING
            t0 = time.perf_counter()
            await engine.resume(run.id, {"ok": True})
            run = await engine.wait(run.id)
            if i >= 5:
                times.append(time.perf_counter() - t0)
            assert run.status is RunStatus.COMPLETED, run
    return {"times": times}


async def raw_langgraph(db_path: str, runs: int, concurrent: bool) -> dict[str, Any]:
    sys.path.insert(0, str(APP))
    from benchflow.flows import build_linear
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(db_path) as saver:
        graph = build_linear().compile(checkpointer=saver)

        async def one() -> float:
            t0 = time.perf_counter()
            config = {"configurable": {"thread_id": str(uuid.uuid4())}}
            out = await graph.ainvoke({"x": 0}, config, durability="sync")
            assert out == {"x": NODES}
            return time.perf_counter() - t0

        for _ in range(5):
            await one()
        if concurrent:
            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(runs)))
            return {"total": time.perf_counter() - t0}
        return {"times": [await one() for _ in range(runs)]}


def child(mode: str, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        if mode == "graphrun-sequential":
            result = asyncio.run(graphrun_sequential(db, runs))
        elif mode == "graphrun-concurrent":
            result = asyncio.run(graphrun_concurrent(db, runs))
        elif mode == "graphrun-resume":
            result = asyncio.run(graphrun_resume(db, runs))
        elif mode == "raw-sequential":
            result = asyncio.run(raw_langgraph(f"{tmp}/raw.db", runs, concurrent=False))
        else:
            result = asyncio.run(raw_langgraph(f"{tmp}/raw.db", runs, concurrent=True))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def measure(mode: str, runs: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--runs", str(runs)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")},
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


ROUNDS = 3  # raw and graphrun alternate, so machine noise hits both alike


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs)
        return
    sequential, concurrent = (30, 50) if args.quick else (200, 200)
    modes = [
        ("raw-sequential", sequential),
        ("graphrun-sequential", sequential),
        ("raw-concurrent", concurrent),
        ("graphrun-concurrent", concurrent),
        ("graphrun-resume", sequential),
    ]
    results: dict[str, dict[str, Any]] = {
        m: {"times": [], "totals": [], "peak_rss_mb": 0.0} for m, _ in modes
    }
    for _ in range(ROUNDS):
        for mode, runs in modes:
            # Sequential runs split across rounds; "at once" means all of them, every round.
            count = runs if "concurrent" in mode else max(1, runs // ROUNDS)
            r = measure(mode, count)
            results[mode]["times"] += r.get("times", [])
            if "total" in r:
                results[mode]["totals"].append(count / r["total"])
            results[mode]["peak_rss_mb"] = max(results[mode]["peak_rss_mb"], r["peak_rss_mb"])
    print(
        f"\n{'mode':<22}{'runs':>6}{'runs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ms/node':>9}{'peak RSS MB':>13}"
    )
    for mode, runs in modes:
        r = results[mode]
        if r["times"]:
            times = sorted(r["times"])
            p50 = statistics.median(times) * 1000
            p99 = times[max(0, int(len(times) * 0.99) - 1)] * 1000
            rate, per_node = 1000 / p50, f"{p50 / NODES:>9.3f}"
            p50s, p99s = f"{p50:>9.2f}", f"{p99:>9.2f}"
        else:
            rate = statistics.median(r["totals"])
            per_node = p50s = p99s = f"{'-':>9}"
        print(f"{mode:<22}{runs:>6}{rate:>10.1f}{p50s}{p99s}{per_node}{r['peak_rss_mb']:>13.1f}")
    seq = statistics.median(results["graphrun-sequential"]["times"]) / statistics.median(
        results["raw-sequential"]["times"]
    )
    conc = statistics.median(results["graphrun-concurrent"]["totals"]) / statistics.median(
        results["raw-concurrent"]["totals"]
    )
    resume = statistics.median(results["graphrun-resume"]["times"]) * 1000
    rss = results["graphrun-concurrent"]["peak_rss_mb"]
    print()
    print(f"(a) graphrun / raw time per run, sequential: {seq:.2f}x   (target <= 0.60x)")
    print(f"(b) graphrun / raw throughput, {concurrent} at once: {conc:.2f}x   (target >= 2.00x)")
    print(f"(d) resume to completed p50: {resume:.2f} ms   (target <= 5 ms)")
    print(f"    peak RSS, graphrun {concurrent} at once: {rss:.0f} MB   (target <= 150 MB)")


if __name__ == "__main__":
    main()
