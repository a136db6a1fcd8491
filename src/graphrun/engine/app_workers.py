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

from graphrun.backoff import Backoff
from graphrun.config import Settings

__all__ = ("PARENT_PID_ENV", "AppWorkers", "WorkerSpec")

logger = logging.getLogger("graphrun.app_workers")

#: Set for a supervised worker: the supervisor's pid; the worker ends when it is gone.
PARENT_PID_ENV = "GRAPHRUN_SUPERVISOR_PID"

FIRST_RESTART_S = 0.5  # seconds before starting a worker that ended badly again
MAX_BACKOFF_S = 30.0  # seconds at most


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
    #: Bad ends in a row, and how long to wait after the last before starting it again.
    failures: int = 0
    retry_after_s: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(FIRST_RESTART_S, MAX_BACKOFF_S))
    waiter: asyncio.Task[None] | None = field(default=None, repr=False)


class AppWorkers:
    """The worker processes of one engine; see the module docstring."""

    def __init__(self, settings: Settings, grace_s: float = 10.0) -> None:
        self.settings = settings
        #: What each worker gives its in-flight runs when asked to stop (``--grace``).
        self.grace_s = grace_s
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
                "GRAPHRUN_SQLITE_SYNCHRONOUS": s.sqlite_synchronous,
                "GRAPHRUN_SIGNAL_QUEUE_LIMIT": str(s.signal_queue_limit),
                "GRAPHRUN_PG_POOL_SIZE": str(s.pg_pool_size),
                "GRAPHRUN_STREAM_MAX": str(s.stream_max_s),
                # The worker ends when this process is gone (no orphans after a kill -9).
                PARENT_PID_ENV: str(os.getpid()),
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

    @property
    def closing(self) -> bool:
        """Whether `close` began (no worker starts after that)."""
        return self._closing

    def failures(self, key: str) -> int:
        """How many times in a row worker ``key`` ended badly."""
        child = self._children.get(key)
        return 0 if child is None else child.failures

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
        if child.failures and time.monotonic() - child.started_at < child.retry_after_s:
            return
        argv = [str(spec.python), "-m", "graphrun", "worker", "--app", str(spec.folder)]
        argv += ["--grace", str(self.grace_s)]
        if spec.drain:
            argv.append("--drain")
        child.started_at = time.monotonic()
        try:
            child.process = await asyncio.create_subprocess_exec(
                *argv, env=self._env(), stdin=asyncio.subprocess.DEVNULL, start_new_session=True
            )
        except OSError as exc:  # its Python is gone (an environment removed): try later
            _failed(child)
            logger.error("cannot start worker %s: %s", spec.key, exc)
            return
        if self.closing:  # closed while it started: end it now
            child.process.send_signal(signal.SIGTERM)
            await child.process.wait()
            return
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
            child.backoff.reset()
            logger.info("worker %s drained and ended", child.spec.key)
            return
        if child.spec.drain:  # started again by the next look for old versions, if needed
            _failed(child)
            logger.warning("worker %s ended with code %s", child.spec.key, code)
            return
        _failed(child)
        logger.warning(
            "worker %s ended with code %s; starting it again (attempt %d)",
            child.spec.key,
            code,
            child.failures,
        )
        await asyncio.sleep(child.retry_after_s)
        if not self._closing:
            child.started_at = 0.0
            try:
                await self.ensure(child.spec)
            except Exception:  # logged; the next look starts it
                logger.exception("restarting worker %s failed", child.spec.key)

    async def close(self, grace_s: float = 10.0) -> None:
        """End every worker as ``graphrun worker`` ends on SIGTERM, then SIGKILL stragglers.

        The first SIGTERM gives in-flight runs ``grace_s`` seconds; a second one makes the
        worker release them at once; a worker still alive 5 s later is killed (its runs
        come back when their leases expire).
        """
        self._closing = True
        alive = [
            c.process for c in self._children.values() if c.process and c.process.returncode is None
        ]
        await asyncio.gather(*(self._end(p, grace_s) for p in alive))
        for child in self._children.values():
            if child.waiter is not None:
                child.waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await child.waiter

    @staticmethod
    async def _end(process: asyncio.subprocess.Process, grace_s: float) -> None:
        for sig, wait_s in (
            (signal.SIGTERM, grace_s),
            (signal.SIGTERM, 5.0),
            (signal.SIGKILL, None),
        ):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                async with asyncio.timeout(wait_s):  # not wait_for: a cancel must win (3.11)
                    await process.wait()
                return
            except TimeoutError:
                continue


def _failed(child: _Child) -> None:
    """Count one more bad end of ``child`` and choose how long until it starts again."""
    child.failures += 1
    child.retry_after_s = child.backoff.next_delay()
