"""Helpers for tests that run `graphrun` in real subprocesses and kill them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import APPS

LINEAR = APPS / "linear"

#: Test-mode timings for worker processes (docs/RELIABILITY.md section 5, a little faster).
WORKER_ENV = {
    "GRAPHRUN_LEASE_TTL": "1.0",
    "GRAPHRUN_HEARTBEAT_INTERVAL": "0.25",
    "GRAPHRUN_POLL_INTERVAL": "0.05",
}


class Worker:
    """A `graphrun worker` subprocess."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def wait(self) -> int:
        return await self.process.wait()


@pytest.fixture
def spawn_worker(db_url: str, tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Start `python -m graphrun worker --app ...` on the test database."""
    spawned: list[Worker] = []

    async def spawn(*apps: Path, extra_env: dict[str, str] | None = None) -> Worker:
        args = [sys.executable, "-m", "graphrun", "worker", "--db", db_url]
        for app in apps:
            args += ["--app", str(app)]
        env = {**os.environ, **WORKER_ENV, **(extra_env or {})}
        with open(tmp_path / f"worker-{len(spawned)}.log", "wb") as log:  # the child keeps its copy
            process = await asyncio.create_subprocess_exec(*args, env=env, stdout=log, stderr=log)
        worker = Worker(process)
        spawned.append(worker)
        return worker

    yield spawn
    for worker in spawned:
        if worker.process.returncode is None:
            worker.kill()


class Server:
    """A `graphrun serve` subprocess and its base URL."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    async def wait(self) -> int:
        return await self.process.wait()


def graphrun(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a `graphrun` command on the test database; fail on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "graphrun", *args, "--db", db_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture
async def spawn_server(db_url: str) -> AsyncIterator[Callable[..., object]]:
    spawned: list[Server] = []

    async def spawn(*args: str, env: dict[str, str] | None = None) -> Server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "graphrun",
            "serve",
            "--db",
            db_url,
            "--port",
            "0",
            "--app",
            str(LINEAR),
            *args,
            env={**os.environ, **WORKER_ENV, **(env or {})},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        seen = []
        while line := (await asyncio.wait_for(process.stdout.readline(), 60)).decode():
            seen.append(line)
            if match := re.search(r"serving on (http://\S+)", line):
                server = Server(process, match.group(1))
                spawned.append(server)
                return server
        raise AssertionError(f"graphrun serve did not start: {''.join(seen)}")

    yield spawn
    for server in spawned:
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()
