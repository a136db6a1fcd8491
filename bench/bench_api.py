"""HTTP API benchmark (issue 3): a real `graphrun serve` on SQLite, driven over real HTTP.

Figures, all from one run of this script (the client is a separate process from the server):

- cold start: spawning `graphrun serve` to the first answered request;
- `POST /runs` to 202 while 200 runs are executing (p50/p99);
- HTTP start to completed of the 10-node workflow: `POST /runs`, then `GET /runs/{id}?wait=`
  (p50);
- resume to completed over HTTP: `POST /runs/{id}/resume`, then `GET ?wait=` (p50);
- the server's RSS at the end (and its peak).

    .venv/bin/python bench/bench_api.py            # full run
    .venv/bin/python bench/bench_api.py --quick    # fewer requests, for a smoke check
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).parent
APP = HERE / "apps" / "benchflow"
GRAPHRUN = [sys.executable, "-m", "graphrun"]
ROUNDS = 3


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def start_server(
    db: str, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, str, float]:
    t0 = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *GRAPHRUN,
        "serve",
        "--db",
        db,
        "--port",
        "0",
        "--app",
        str(APP),
        "--concurrency",
        "400",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    while line := (await process.stdout.readline()).decode():
        if match := re.search(r"serving on (http://\S+)", line):
            url = match.group(1)
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/healthz")).status_code == 200
            return process, url, time.perf_counter() - t0
    raise RuntimeError("graphrun serve did not start")


async def post_latency_under_load(
    client: httpx.AsyncClient, requests: int, measured: dict[str, object]
) -> dict[str, float]:
    """POST ``measured`` ``requests`` times, one after another, while 200 runs execute."""
    # 200 runs of 10 nodes that each pause 1 s: all of them executing while we measure.
    slow = {"workflow": "benchflow.slow", "input": {"x": 0, "pause": 1.0}}
    started = await asyncio.gather(*(client.post("/runs", json=slow) for _ in range(200)))
    background = [r.json()["id"] for r in started]
    running = (await client.get("/runs", params={"status": "running", "limit": 500})).json()
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = await client.post("/runs", json=measured)
        times.append(time.perf_counter() - t0)
        assert response.status_code == 202, response.text
        background.append(response.json()["id"])
    for run_id in background:  # the next figure starts on an idle server
        done = (await client.get(f"/runs/{run_id}", params={"wait": 60})).json()
        assert done["status"] == "completed", done
    return {
        "executing": len(running["runs"]),
        "p50": statistics.median(times) * 1000,
        "p99": pct(times, 99) * 1000,
    }


async def start_to_completed(client: httpx.AsyncClient, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run = (
            await client.post("/runs", json={"workflow": "benchflow.linear", "input": {"x": 0}})
        ).json()
        done = (await client.get(f"/runs/{run['id']}", params={"wait": 30})).json()
        times.append(time.perf_counter() - t0)
        assert done["output"] == {"x": 10}, done
    return times


async def resume_to_completed(client: httpx.AsyncClient, runs: int) -> list[float]:
    waiting = []
    for _ in range(runs):
        run = (
            await client.post("/runs", json={"workflow": "benchflow.approval", "input": {"x": 0}})
        ).json()
        waiting.append(run["id"])
    for run_id in waiting:
        assert (await client.get(f"/runs/{run_id}", params={"wait": 30})).json()[
            "status"
        ] == "waiting"
    times = []
    for run_id in waiting:
        t0 = time.perf_counter()
        resumed = await client.post(f"/runs/{run_id}/resume", json={"value": {"go": True}})
        assert resumed.status_code == 200, resumed.text
        done = (await client.get(f"/runs/{run_id}", params={"wait": 30})).json()
        times.append(time.perf_counter() - t0)
        assert done["status"] == "completed", done
    return times


def import_floor() -> float:
    """Seconds for a bare interpreter to import what any graphrun server must (its floor)."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import langgraph.graph, fastapi, uvicorn, sqlalchemy"], check=True
    )
    return time.perf_counter() - t0


async def in_process(db: str, runs: int) -> tuple[list[float], list[float]]:
    """The same two figures without HTTP: the engine called directly (the floor)."""
    from graphrun import Engine, Settings

    async with Engine(apps=[APP], settings=Settings(database_url=db)) as engine:
        starts = []
        for i in range(runs + 5):
            t0 = time.perf_counter()
            run = await engine.wait((await engine.start("benchflow.linear", {"x": 0})).id)
            if i >= 5:
                starts.append(time.perf_counter() - t0)
            assert run.output == {"x": 10}
        waiting = [(await engine.start("benchflow.approval", {"x": 0})).id for _ in range(runs)]
        for run_id in waiting:
            await engine.wait(run_id)
        resumes = []
        for run_id in waiting:
            t0 = time.perf_counter()
            await engine.resume(run_id, {"go": True})
            assert (await engine.wait(run_id)).output == {"x": 2}
            resumes.append(time.perf_counter() - t0)
    return starts, resumes


async def main(quick: bool) -> None:
    n = 40 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        env = {**os.environ, "GRAPHRUN_POLL_INTERVAL": "1.0"}
        created = subprocess.run(  # noqa: ASYNC221 (before the server starts)
            [*GRAPHRUN, "keys", "create", "bench", "-s", "write", "--json", "--db", db],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        token = json.loads(created.stdout)["token"]
        floor_import = import_floor()
        process, url, cold = await start_server(db, env)
        server = psutil.Process(process.pid)
        peak = 0.0
        try:
            headers = {"Authorization": f"Bearer {token}"}
            limits = httpx.Limits(max_connections=10)
            async with httpx.AsyncClient(
                base_url=url, headers=headers, timeout=120, limits=limits
            ) as client:
                await start_to_completed(client, 10)  # warm-up
                # HTTP and the in-process floor alternate over rounds, so that the shared
                # machine's changing speed hits both alike; figures are over all samples.
                times: list[float] = []
                resume: list[float] = []
                floor_start: list[float] = []
                floor_resume: list[float] = []
                for r in range(ROUNDS):
                    floor = await in_process(f"sqlite:///{tmp}/floor-{r}.db", n // ROUNDS)
                    floor_start += floor[0]
                    floor_resume += floor[1]
                    times += await start_to_completed(client, n // ROUNDS)
                    resume += await resume_to_completed(client, n // ROUNDS)
                    peak = max(peak, server.memory_info().rss)
                # Each POST starts a run too: a 10-node one that at once competes for the
                # CPU, then one like the 200 (its nodes pause), which keeps the load steady.
                load = await post_latency_under_load(
                    client, n, {"workflow": "benchflow.linear", "input": {"x": 0}}
                )
                steady = await post_latency_under_load(
                    client, n, {"workflow": "benchflow.slow", "input": {"x": 0, "pause": 1.0}}
                )
                peak = max(peak, server.memory_info().rss)
                rss_end = server.memory_info().rss
        finally:
            process.terminate()
            await process.wait()
    mb = 1024 * 1024
    rows = [
        ("cold start to first request", f"{cold * 1000:.0f} ms", "<= 1000 ms"),
        (
            "  importing langgraph, fastapi, uvicorn, sqlalchemy alone",
            f"{floor_import * 1000:.0f} ms",
            "",
        ),
        (
            f"POST /runs (10-node run) p50, {load['executing']} executing",
            f"{load['p50']:.2f} ms",
            "",
        ),
        (
            f"POST /runs (10-node run) p99, {load['executing']} executing",
            f"{load['p99']:.2f} ms",
            "< 50 ms",
        ),
        (
            f"POST /runs (pausing run) p50, {steady['executing']} executing",
            f"{steady['p50']:.2f} ms",
            "",
        ),
        (
            f"POST /runs (pausing run) p99, {steady['executing']} executing",
            f"{steady['p99']:.2f} ms",
            "< 50 ms",
        ),
        (
            "HTTP start -> completed, 10 nodes, p50",
            f"{statistics.median(times) * 1000:.2f} ms",
            "<= 15 ms",
        ),
        ("HTTP start -> completed, 10 nodes, p99", f"{pct(times, 99) * 1000:.2f} ms", ""),
        (
            "  same, in process (no HTTP), p50",
            f"{statistics.median(floor_start) * 1000:.2f} ms",
            "",
        ),
        ("HTTP resume -> completed, p50", f"{statistics.median(resume) * 1000:.2f} ms", "<= 10 ms"),
        (
            "  same, in process (no HTTP), p50",
            f"{statistics.median(floor_resume) * 1000:.2f} ms",
            "",
        ),
        (
            "server RSS at the end (peak sampled)",
            f"{rss_end / mb:.0f} MB ({peak / mb:.0f} MB)",
            "<= 150 MB",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'figure':<{width}} | measured | target |")
    print(f"| {'-' * width} | --- | --- |")
    for name, value, target in rows:
        print(f"| {name:<{width}} | {value} | {target} |")
    print(
        f"\n{n} requests per figure; SQLite, synchronous=FULL, auth on; Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
