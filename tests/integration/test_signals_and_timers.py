"""Signals (a durable mailbox, consumed exactly once and in order) and durable timers."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import pytest

from graphrun import (
    Engine,
    Run,
    RunNotFound,
    RunStatus,
    SignalQueueFull,
    TransitionConflict,
    ValidationFailed,
)
from tests.conftest import APPS, EngineFactory

if str(APPS / "primitives") not in sys.path:
    sys.path.insert(0, str(APPS / "primitives"))


async def finished(engine: Engine, run_id: str) -> Run:
    """The run once it has ended (through its waits)."""
    async for _ in engine.runs.watch(run_id, until_finished=True):
        pass
    return await engine.get(run_id)


async def test_signals_sent_before_the_wait_are_consumed_by_it_in_order(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("primitives", run_worker=False) as engine:
        run = await engine.start("primitives.mailbox", {"count": 3, "items": []})
        first = await engine.signal(run.id, "item", 5)
        second = await engine.signal(run.id, "item", 6)
        assert (first.delivered, second.delivered) == (False, False)
    async with make_engine("primitives") as engine:
        run = await engine.wait(run.id, timeout=30)
        # the first wait took 5, the second 6; the third waits for a signal not sent yet
        assert run.status is RunStatus.WAITING
        (waiting,) = run.waiting_for
        assert (waiting.kind, waiting.name) == ("signal", "item")
        sent = await engine.signal(run.id, "item", 7)
        assert sent.delivered
        run = await engine.wait(run.id, timeout=30)
        assert run.status is RunStatus.COMPLETED
        assert run.output["items"] == [5, 6, 7]
        mailbox = await engine.runs.signals(run.id)
        assert [(s.payload, s.consumed_at is not None) for s in mailbox] == [
            (5, True),
            (6, True),
            (7, True),
        ]


async def test_bad_signals_are_refused_and_store_nothing(make_engine: EngineFactory) -> None:
    async with make_engine("primitives", signal_queue_limit=2) as engine:
        run = await engine.wait(
            (await engine.start("primitives.mailbox", {"count": 9, "items": []})).id, timeout=30
        )
        with pytest.raises(ValidationFailed) as undeclared:
            await engine.signal(run.id, "other", 1)
        assert undeclared.value.details["errors"][0]["pointer"] == "/name"
        with pytest.raises(ValidationFailed):
            await engine.signal(run.id, "item", "not an integer")
        with pytest.raises(RunNotFound):
            await engine.signal("00000000-0000-0000-0000-000000000000", "item", 1)
        assert await engine.runs.signals(run.id) == []
        # the mailbox cap counts unconsumed signals only ("note" is declared, never waited on)
        await engine.signal(run.id, "note", {"a": 1})
        await engine.signal(run.id, "note", {"a": 2})
        with pytest.raises(SignalQueueFull):
            await engine.signal(run.id, "note", {"a": 3})
        # a signal the run waits for is consumed at once: a full mailbox does not refuse it
        assert (await engine.signal(run.id, "item", 1)).delivered
        await engine.wait(run.id, timeout=30)  # waiting for the next item
        await engine.cancel(run.id)
        with pytest.raises(TransitionConflict):
            await engine.signal(run.id, "item", 1)
        assert len(await engine.runs.signals(run.id)) == 3


async def test_a_sleeping_run_holds_no_slot_and_wakes_when_due(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("primitives", concurrency=1) as engine:
        before = time.time()
        run = await engine.wait(
            (await engine.start("primitives.sleeper", {"seconds": 1.0})).id, timeout=30
        )
        assert run.status is RunStatus.WAITING
        (timer,) = run.waiting_for
        assert timer.kind == "timer"
        assert timer.wake_at is not None
        assert before + 1.0 <= timer.wake_at.timestamp() <= time.time() + 1.0
        # the one slot is free while it sleeps: another run goes all the way through
        other = await engine.start("primitives.sleeper", {"seconds": 0.01})
        assert (await finished(engine, other.id)).status is RunStatus.COMPLETED
        run = await finished(engine, run.id)
        late = time.time() - timer.wake_at.timestamp()
        print(f"\ntimer woke {late:.3f} s after its due time")
        assert run.status is RunStatus.COMPLETED
        assert run.output["woke"] is True
        kinds = [e.kind for e in await engine.runs.events(run.id)]
        assert "timer" in kinds


async def test_sleep_until_a_datetime_and_a_timer_survives_a_restart(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("primitives") as engine:
        run = await engine.wait(
            (await engine.start("primitives.sleeper", {"seconds": 1.5})).id, timeout=30
        )
        assert run.status is RunStatus.WAITING
    # the engine is closed while the timer is pending; a new one wakes the run
    async with make_engine("primitives") as engine:
        run = await finished(engine, run.id)
        assert run.status is RunStatus.COMPLETED


async def test_a_signal_wait_times_out_or_gets_its_signal(make_engine: EngineFactory) -> None:
    async with make_engine("primitives") as engine:
        slow = await engine.wait(
            (await engine.start("primitives.deadline", {"seconds": 0.5})).id, timeout=30
        )
        fast = await engine.wait(
            (await engine.start("primitives.deadline", {"seconds": 60})).id, timeout=30
        )
        (wait,) = fast.waiting_for
        assert (wait.kind, wait.name) == ("signal", "approve")
        assert wait.wake_at is not None
        assert wait.wake_at > datetime.now(UTC)
        with pytest.raises(ValidationFailed):  # the declared model requires "by"
            await engine.signal(fast.id, "approve", {})
        await engine.signal(fast.id, "approve", {"by": "ana"})
        fast = await finished(engine, fast.id)
        slow = await finished(engine, slow.id)
        assert fast.output["outcome"] == "approved by ana"
        assert slow.output["outcome"] == "timed out"
        assert fast.waiting_for == ()
        assert slow.waiting_for == ()


async def test_resume_does_not_answer_a_signal_or_timer_wait(make_engine: EngineFactory) -> None:
    async with make_engine("primitives") as engine:
        run = await engine.wait(
            (await engine.start("primitives.deadline", {"seconds": 60})).id, timeout=30
        )
        with pytest.raises(TransitionConflict, match="signal"):
            await engine.resume(run.id, {"by": "ana"})
        assert (await engine.get(run.id)).status is RunStatus.WAITING
