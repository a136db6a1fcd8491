"""Helpers for tests that run `graphrun` in real subprocesses and kill them."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

#: Test-mode timings for worker processes (RELIABILITY.md section 5, a little faster).
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
