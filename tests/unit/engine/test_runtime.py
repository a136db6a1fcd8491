"""The runtime: a background task that raises is logged and started again, never lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from graphrun.engine.runtime import Runtime


async def test_a_task_that_raises_is_logged_with_its_action_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = Runtime()
    calls = 0
    second_start = asyncio.Event()
    release = asyncio.Event()

    async def body() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("unexpected")
        second_start.set()
        await release.wait()

    with caplog.at_level(logging.ERROR, logger="graphrun.runtime"):
        runtime.start("loop", body, first_restart_s=0.01, max_restart_s=0.01)
        await asyncio.wait_for(second_start.wait(), 10)
    assert runtime.crashes("loop") == 1
    assert runtime.names() == ["loop"]
    (record,) = [r for r in caplog.records if getattr(r, "action", None) == "loop_crashed"]
    assert record.exc_info is not None
    assert "KeyError" in record.getMessage()
    release.set()
    await runtime.join("loop")
    assert runtime.names() == []


async def test_a_task_that_returns_is_done_and_stop_cancels_the_others() -> None:
    runtime = Runtime()
    ran = asyncio.Event()

    async def once() -> None:
        ran.set()

    async def forever() -> None:
        await asyncio.Event().wait()

    runtime.start("once", once)
    runtime.start("forever", forever)
    await ran.wait()
    await asyncio.sleep(0)
    assert runtime.names() == ["forever"]
    with pytest.raises(ValueError, match="runs already"):
        runtime.start("forever", forever)
    await runtime.stop()
    assert runtime.names() == []
