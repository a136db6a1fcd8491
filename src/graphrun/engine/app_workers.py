"""Worker processes an engine supervises: apps with their own dependencies, and old versions.

Two kinds of app never run inside the engine process: an app with dependencies (its
workflows run under its own environment's Python) and an app version that unfinished runs
still need after the app folder changed (its stored files, unpacked). For each, the engine
starts ``python -m graphrun worker --app FOLDER`` and keeps it running: a worker that dies
is started again after a backoff; one started with ``--drain`` ends on its own when its
version has nothing left to execute, and is started again when it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from graphrun.config import Settings

__all__ = ("AppWorkers", "WorkerSpec")

logger = logging.getLogger("graphrun.app_workers")

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True, kw_only=True)
class WorkerSpec:
    """What to run: one app folder under one Python."""

    #: Names this worker in logs and in `AppWorkers`: ``app`` or ``app@version``.
    key: str
    python: Path
    folder: Path
    #: End when the version has no queued or running runs left.
    drain: bool = False


@dataclass
class _Child:
    spec: WorkerSpec
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    failures: int = 0
    waiter: asyncio.Task[None] | None = field(default=None, repr=False)


class AppWorkers:
    """The worker processes of one engine; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._children: dict[str, _Child] = {}
        self._closing = False

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        s = self.settings
        env.update(
            {
                "GRAPHRUN_DATABASE_URL": s.database_url,
                "GRAPHRUN_POLL_INTERVAL": str(s.poll_interval_s),
                "GRAPHRUN_LEASE_TTL": str(s.lease_ttl_s),
                "GRAPHRUN_HEARTBEAT_INTERVAL": str(s.heartbeat_interval_s),
                "GRAPHRUN_CONCURRENCY": str(s.concurrency),
                "GRAPHRUN_BUSY_TIMEOUT": str(s.busy_timeout_s),
                "GRAPHRUN_HOME": str(s.home),
                "PYTHONNOUSERSITE": "1",
            }
        )
        return env

    def running(self, key: str) -> bool:
        """Whether the worker ``key`` is alive now."""
        child = self._children.get(key)
        return child is not None and child.process is not None and child.process.returncode is None

    @property
    def keys(self) -> list[str]:
        """Every worker started, alive or not."""
        return sorted(self._children)

    def pid(self, key: str) -> int | None:
        """The process id of worker ``key`` while it runs."""
        child = self._children.get(key)
        return child.process.pid if child and child.process and self.running(key) else None

    async def ensure(self, spec: WorkerSpec) -> None:
        """Start the worker unless it runs (or failed recently: then after its backoff)."""
        if self._closing or self.running(spec.key):
            return
        child = self._children.setdefault(spec.key, _Child(spec=spec))
        child.spec = spec
        backoff = min(MAX_BACKOFF_S, 0.5 * 2**child.failures) if child.failures else 0.0
        if time.monotonic() - child.started_at < backoff:
            return
        argv = [str(spec.python), "-m", "graphrun", "worker", "--app", str(spec.folder)]
        if spec.drain:
            argv.append("--drain")
        child.started_at = time.monotonic()
        child.process = await asyncio.create_subprocess_exec(
            *argv, env=self._env(), stdin=asyncio.subprocess.DEVNULL, start_new_session=True
        )
        logger.info("started worker %s (pid %s): %s", spec.key, child.process.pid, " ".join(argv))
        child.waiter = asyncio.create_task(
            self._watch(child), name=f"graphrun-app-worker-{spec.key}"
        )

    async def _watch(self, child: _Child) -> None:
        assert child.process is not None
        code = await child.process.wait()
        if self._closing:
            return
        if code == 0 and child.spec.drain:
            child.failures = 0
            logger.info("worker %s drained and ended", child.spec.key)
            return
        child.failures += 1
        logger.warning(
            "worker %s ended with code %s; starting it again (attempt %d)",
            child.spec.key,
            code,
            child.failures,
        )
        await asyncio.sleep(min(MAX_BACKOFF_S, 0.5 * 2 ** (child.failures - 1)))
        if not self._closing:
            child.started_at = 0.0
            await self.ensure(child.spec)

    async def close(self, grace_s: float = 10.0) -> None:
        """SIGTERM every worker (they release their runs), then SIGKILL after ``grace_s``."""
        self._closing = True
        alive = [c for c in self._children.values() if c.process and c.process.returncode is None]
        for child in alive:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        for child in alive:
            assert child.process is not None
            try:
                await asyncio.wait_for(child.process.wait(), grace_s + 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                await child.process.wait()
        for child in self._children.values():
            if child.waiter is not None:
                child.waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await child.waiter
