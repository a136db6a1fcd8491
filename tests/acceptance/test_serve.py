"""`graphrun serve` as a real process: kill -9 mid-run and restart, SIGTERM, keys from the CLI.

The server is started as a newcomer would (``python -m graphrun serve``) on a free port it
reports on stdout; requests go over real HTTP with keys made by ``graphrun keys create``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import graphrun
from tests.acceptance.test_crash_recovery import wait_for_line


def _effects(path: Path) -> tuple[Counter[int], Counter[int]]:
    lines = path.read_text().splitlines()
    starts = Counter(int(x.split()[1]) for x in lines if x.startswith("start"))
    dones = Counter(int(x.split()[1]) for x in lines if x.startswith("done"))
    return starts, dones


@pytest.mark.acceptance
@pytest.mark.both_databases
async def test_kill_9_the_server_mid_run_and_restart_it(
    spawn_server, db_url: str, tmp_path: Path
) -> None:
    token = json.loads(
        graphrun(db_url, "keys", "create", "e2e", "--scope", "write", "--json").stdout
    )["token"]
    headers = {"Authorization": f"Bearer {token}"}
    effects = tmp_path / "effects.txt"
    server = await spawn_server()
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        started = await client.post(
            "/runs",
            json={
                "workflow": "linear.ten",
                "input": {"x": 0, "effects": str(effects), "delay": 0.05},
            },
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        await wait_for_line(effects, "start 4")
    server.signal(signal.SIGKILL)
    await server.wait()

    server = await spawn_server()
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        done = (await client.get(f"/runs/{run_id}", params={"wait": 60})).json()
        assert done["status"] == "completed"
        assert done["output"]["x"] == 10
        starts, dones = _effects(effects)
        assert all(starts[n] == 1 and dones[n] == 1 for n in range(4)), "a finished node ran again"
        assert starts[4] == 2, "the node in flight at the kill runs again exactly once"
        assert all(starts[n] == 1 for n in range(5, 10))
        history = (await client.get(f"/runs/{run_id}/history")).json()["checkpoints"]
        assert history[0]["node"] == "n9"
        print(f"\nserve kill -9 at node 4: completed; node starts {dict(sorted(starts.items()))}")


@pytest.mark.acceptance
@pytest.mark.both_databases
async def test_keys_from_the_cli_guard_the_real_server(spawn_server, db_url: str) -> None:
    reader = json.loads(graphrun(db_url, "keys", "create", "dash", "-s", "read", "--json").stdout)
    server = await spawn_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await client.get("/runs")).status_code == 401
        auth = {"Authorization": f"Bearer {reader['token']}"}
        assert (await client.get("/runs", headers=auth)).status_code == 200
        denied = await client.post(
            "/runs", headers=auth, json={"workflow": "linear.ten", "input": {"x": 1}}
        )
        assert denied.status_code == 403
        listed = json.loads(graphrun(db_url, "keys", "list", "--json").stdout)
        assert [k["id"] for k in listed] == [reader["id"]]
        assert "token" not in listed[0]
        graphrun(db_url, "keys", "revoke", reader["id"])
        assert (await client.get("/runs", headers=auth)).status_code == 401


@pytest.mark.acceptance
@pytest.mark.both_databases
@pytest.mark.parametrize(("grace", "signals"), [("0.5", 1), ("30", 2)])
async def test_sigterm_finishes_or_releases_in_flight_runs(
    spawn_server, db_url: str, tmp_path: Path, grace: str, signals: int
) -> None:
    server = await spawn_server("--dev", "--grace", grace)
    effects = [tmp_path / f"effects-{i}.txt" for i in range(5)]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        ids = []
        for path in effects:
            body = {"workflow": "linear.ten", "input": {"x": 0, "effects": str(path), "delay": 0.5}}
            ids.append((await client.post("/runs", json=body)).json()["id"])
        for path in effects:
            await wait_for_line(path, "start 0")
    server.signal(signal.SIGTERM)  # grace: the runs go on...
    await wait_for_line(effects[0], "start 1")
    if signals == 2:
        server.signal(signal.SIGTERM)  # ...until a second signal releases them at once
    assert await asyncio.wait_for(server.wait(), 15) == 0

    out = json.loads(graphrun(db_url, "runs", "list", "--json", "--limit", "10").stdout)["runs"]
    by_id = {r["id"]: r for r in out}
    left_running = [i for i in ids if by_id[i]["status"] == "running"]
    assert left_running == [], "a run was left running without a live lease"
    # Each run needs 5 s; had the grace (or the second signal) been ignored, they would
    # have finished here instead of being released to the queue.
    assert {by_id[i]["status"] for i in ids} == {"queued"}
    statuses = Counter(by_id[i]["status"] for i in ids)
    print(f"\nR3: 5 in-flight runs, grace {grace} s, SIGTERM x{signals} -> {dict(statuses)}")

    server = await spawn_server("--dev")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        for run_id in ids:
            done = (await client.get(f"/runs/{run_id}", params={"wait": 60})).json()
            assert done["status"] == "completed"
            assert done["output"]["x"] == 10


@pytest.mark.acceptance
async def test_dev_mode_refuses_a_public_host(db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "graphrun", "serve", "--dev", "--host", "0.0.0.0", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "loopback" in result.stderr + result.stdout
