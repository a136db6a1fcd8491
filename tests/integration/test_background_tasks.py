"""Every background loop of an engine that dies is logged and started again, never lost.

Each loop's body is made to raise an unexpected exception the first time it runs; the engine
must log the crash with its action, start the loop again, and then do that loop's work:
claim runs, renew leases, wake timers, fire schedules, purge, look for old versions, and
(PostgreSQL) listen. Also the defect that made this necessary: a stop-request poll raising
something other than a storage error ended the claim loop while heartbeats went on, so the
worker silently stopped taking work.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graphrun import Engine, Run, RunStatus
from graphrun.engine.app_host import AppHost
from graphrun.engine.due_loop import DueLoop
from graphrun.engine.retention import Retention
from graphrun.engine.worker import Worker
from graphrun.storage import runs as runs_store
from graphrun.storage.backends.pg_listen import QueuedRunListener
from tests.conftest import APPS, EngineFactory, eventually

if str(APPS / "primitives") not in sys.path:
    sys.path.insert(0, str(APPS / "primitives"))

#: Each loop (by its class and method) and the runtime tasks it runs as.
LOOPS: list[tuple[type, str]] = [
    (Worker, "_claim_loop"),
    (Worker, "_heartbeat_loop"),
    (DueLoop, "_loop"),
    (Retention, "run_periodically"),
    (AppHost, "_supervise"),
    (QueuedRunListener, "run"),
]


def crash_first_call(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
    """Make ``cls.name`` raise the first time each instance runs it."""
    original = getattr(cls, name)
    crashed: set[int] = set()

    async def crashing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if id(self) not in crashed:
            crashed.add(id(self))
            raise RuntimeError(f"injected into {cls.__name__}.{name}")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, crashing)


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> Callable[[], int]:
    """Count calls of ``owner.name`` (an async function); returns the counter."""
    original = getattr(owner, name)
    calls = [0]

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return lambda: calls[0]


async def test_every_background_loop_that_dies_is_logged_and_started_again(
    make_engine: EngineFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    for cls, name in LOOPS:
        crash_first_call(monkeypatch, cls, name)
    purges = count_calls(monkeypatch, Retention, "purge")
    looks = count_calls(monkeypatch, AppHost, "_serve_old_versions")
    caplog.set_level(logging.ERROR, logger="graphrun.runtime")
    async with make_engine("primitives", purge_interval_s=0.2) as engine:
        runtime = engine.runtime
        expected = ["app_host", "claim", "heartbeat", "timers", "schedules", "purge"]
        if engine.listener is not None:
            expected.append("listener")
        assert sorted(runtime.names()) == sorted(expected)
        await eventually(lambda: all(runtime.crashes(n) == 1 for n in expected), "every crash")
        actions = {getattr(r, "action", None) for r in caplog.records}
        assert {f"{n}_crashed" for n in expected} <= actions
        # Every loop does its work again. Started from another engine, so only the claim
        # loop (not a claim in the start's own transaction) can take the runs.
        async with make_engine("primitives", run_worker=False) as client:
            nap = await client.start("primitives.sleeper", {"seconds": 0.2})
            # Longer than a lease: it completes only if heartbeats renew it.
            long = await client.start(
                "primitives.long", {"seconds": 3.0, "effects": str(tmp_path / "effects")}
            )
        assert (await finished(engine, nap.id)).status is RunStatus.COMPLETED
        done = await finished(engine, long.id)
        assert (done.status, done.attempts) == (RunStatus.COMPLETED, 1)
        await engine.schedules.create("every-second", "primitives.sleeper", {"seconds": 0}, every=1)
        await eventually(
            lambda: _any_run_of(engine, "primitives.sleeper", besides=nap.id), "a scheduled run"
        )
        await eventually(lambda: purges() >= 1 and looks() >= 1, "a purge and a look")
        if isinstance(engine.listener, QueuedRunListener):
            await engine.listener.connected.wait()
        assert sorted(runtime.names()) == sorted(expected)


async def finished(engine: Engine, run_id: str) -> Run:
    """The run once it has ended (through its waits)."""
    async for _ in engine.runs.watch(run_id, until_finished=True):
        pass
    return await engine.get(run_id)


async def _any_run_of(engine: Engine, workflow: str, *, besides: str) -> bool:
    page = await engine.list_runs(workflow=workflow)
    return any(r.id != besides for r in page.runs)


async def test_a_stop_request_poll_that_fails_oddly_does_not_stop_claiming(
    make_engine: EngineFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    polls = [0]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        polls[0] += 1
        raise RuntimeError("not a StorageError")

    monkeypatch.setattr(runs_store, "stop_requests", broken)
    caplog.set_level(logging.WARNING)
    async with make_engine("primitives") as engine:
        # A long run keeps the poll going (it runs only while this worker executes a run).
        long = await engine.start(
            "primitives.long", {"seconds": 2.0, "effects": str(tmp_path / "effects")}
        )
        await eventually(lambda: polls[0] >= 2, "two failed polls")
        async with make_engine("primitives", run_worker=False) as client:
            nap = await client.start("primitives.sleeper", {"seconds": 0})
        assert (await finished(engine, nap.id)).status is RunStatus.COMPLETED
        assert (await finished(engine, long.id)).status is RunStatus.COMPLETED
        assert engine.runtime.crashes("claim") == 0
    assert "stop_poll_failed" in {getattr(r, "action", None) for r in caplog.records}
