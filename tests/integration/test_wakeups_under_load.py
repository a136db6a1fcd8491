"""Wake-ups and stops that meet: a stop asked just as a waiter is woken must still stop it.

The hang this guards against (seen under load, in
``test_resume_does_not_answer_a_signal_or_timer_wait``): a run starts waiting on a timer, and
its executor nudges the timer loop (`DueLoop.nudge`) in the same turns of the event loop in
which the engine closes and cancels that loop. ``asyncio.wait_for`` on Python 3.11 returns
the inner result when its task is cancelled after the inner wait finished but before the
task resumed, so the cancellation is lost: the timer loop polls on, and ``DueLoop.stop``
waits for it forever. On an idle machine the nudge comes long before the close; on a busy one
``Engine.wait`` sees the committed wait (its poll reads it) before the executor has resumed
to nudge, and the two meet.

The tests place the stop at every turn of that window instead of relying on timing; the
bounds below only detect a hang, they assert nothing about how long anything takes.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from graphrun import Engine, Run, RunStatus, Settings
from graphrun.engine.due_loop import DueLoop
from graphrun.engine.notifier import wait_for_event
from graphrun.engine.runtime import Runtime
from tests.conftest import APPS, TEST_TIMINGS, EngineFactory

if str(APPS / "primitives") not in sys.path:
    sys.path.insert(0, str(APPS / "primitives"))

#: A hang detector, not a timing assert: each of these takes well under a second.
HANG_S = 20.0
#: Event-loop turns between the wake-up and the stop: more than the window is wide.
TURNS = range(8)


async def turns(n: int) -> None:
    """Let the event loop run ``n`` times (the other tasks each take one step)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_wait_cancelled_just_after_its_event_is_set_is_cancelled() -> None:
    lost = []
    for n in TURNS:
        event = asyncio.Event()
        waiter = asyncio.ensure_future(wait_for_event(event, 30.0))
        await turns(2)  # parked on the event
        event.set()
        await turns(n)
        returned = waiter.done()  # it may have seen the event and returned already
        waiter.cancel()
        await asyncio.wait([waiter], timeout=HANG_S)
        assert waiter.done(), f"still waiting {n} turns after set + cancel"
        if not returned and not waiter.cancelled():
            lost.append(n)  # it was cancelled while still waiting, yet returned normally
    assert lost == [], f"the cancel was lost when it came {lost} turns after the set"


async def test_a_due_loop_stopped_just_after_a_nudge_stops() -> None:
    settings = Settings.from_env({}, **TEST_TIMINGS)

    async def next_due() -> float:
        return 60.0  # a timer far away: the loop sleeps on its event

    async def fire() -> int:
        return 0

    hung = []
    for n in TURNS:
        loop = DueLoop("timers", settings, next_due, fire, Runtime())
        loop.start()
        await turns(3)  # parked in wait_for_event
        loop.nudge()
        await turns(n)
        stopping = asyncio.ensure_future(loop.stop())
        await asyncio.wait([stopping], timeout=HANG_S)
        if not stopping.done():
            hung.append(n)
            stopping.cancel()  # cancels the loop again (now in a fresh wait): it ends
            await asyncio.wait([stopping])
            break  # one hang says it all
    assert hung == [], f"DueLoop.stop hung when it came {hung} turns after a nudge"


def delay_after_the_wait_commits(engine: Engine) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the executor back once the writer committed a run's wait, until released.

    As on a busy machine: the wait is on disk (a poll reads it) while the executor has not
    yet had the loop back to nudge the timer loop. Returns (committed, release).
    """
    committed, release = asyncio.Event(), asyncio.Event()
    write = engine.db.write

    async def delayed_write(job: Any) -> Any:
        result = await write(job)
        if (
            isinstance(result, Run)
            and result.status is RunStatus.WAITING
            and not committed.is_set()
        ):
            committed.set()
            await release.wait()
        return result

    engine.db.write = delayed_write  # type: ignore[method-assign]
    return committed, release


async def test_close_as_a_run_starts_waiting_on_a_timer_does_not_hang(
    make_engine: EngineFactory,
) -> None:
    """The issue's interleaving: the wait is committed and seen, the close begins, and only
    then does the (delayed) executor resume and nudge the timer loop."""
    hung = []
    for n in TURNS:
        engine = make_engine("primitives")
        assert isinstance(engine, Engine)
        await engine.open()
        committed, resume_executor = delay_after_the_wait_commits(engine)
        try:
            run = await engine.start("primitives.deadline", {"seconds": 60})
            await asyncio.wait_for(committed.wait(), HANG_S)
            # What `Engine.wait`'s poll reads at this point: the run waits on its timer.
            seen = await engine.get(run.id)
            assert seen.status is RunStatus.WAITING
            assert [w.wake_at is not None for w in seen.waiting_for] == [True]
        except BaseException:
            resume_executor.set()
            await engine.close()
            raise
        closing = asyncio.ensure_future(engine.close())
        await turns(n)
        resume_executor.set()  # the executor resumes: it nudges the timer loop now
        await asyncio.wait([closing], timeout=HANG_S)
        if not closing.done():
            hung.append(n)
            closing.cancel()  # unblocks the stuck DueLoop.stop; then close the rest
            await asyncio.wait([closing])
            await engine.close()
            break  # one hang says it all
        else:
            closing.result()
    assert hung == [], f"Engine.close hung when the executor's nudge came {hung} turns into it"
