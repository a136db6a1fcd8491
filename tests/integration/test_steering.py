"""Pause, cancel, retries and timeouts per node, and fork: steering runs from outside."""

from __future__ import annotations

import asyncio
import sys
import uuid
from types import ModuleType

import pytest
from sqlalchemy import update

from graphrun import CheckpointNotFound, RunStatus, TransitionConflict, ValidationFailed
from graphrun.storage import open_database
from graphrun.storage.schema import runs as runs_table
from tests.conftest import APPS, EngineFactory, entered

if str(APPS / "primitives") not in sys.path:
    sys.path.insert(0, str(APPS / "primitives"))

import primitives.flows as primitives


async def test_pause_of_a_running_run_stops_at_the_next_step_boundary(
    make_engine: EngineFactory, gated: ModuleType
) -> None:
    async with make_engine("gated") as engine:
        run = await engine.start("gated.blocking", {"x": 0})
        await entered(gated)
        requested = await engine.pause(run.id)
        assert requested.status is RunStatus.RUNNING
        assert requested.pause_requested
        gated.GATE.set()  # the step in flight finishes and is checkpointed
        paused = await engine.wait(run.id, timeout=30)
        assert paused.status is RunStatus.PAUSED
        assert paused.pause_requested is False
        nodes = [e.data["node"] for e in await engine.runs.events(run.id) if e.kind == "node"]
        assert nodes == ["before", "block"]
        (latest, *_) = await engine.runs.history(run.id)
        assert latest.state == {"x": 2}
        with pytest.raises(TransitionConflict):
            await engine.pause(run.id)
        await engine.resume(run.id)
        done = await engine.wait(run.id, timeout=30)
        assert done.status is RunStatus.COMPLETED
        assert done.output == {"x": 3}
        nodes = [e.data["node"] for e in await engine.runs.events(run.id) if e.kind == "node"]
        assert nodes == ["before", "block", "after"]  # nothing ran twice


async def test_pause_of_a_queued_run_is_immediate_and_a_waiting_run_refuses(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("primitives", run_worker=False) as engine:
        run = await engine.start("primitives.chain", {"x": 0, "trail": []})
        paused = await engine.pause(run.id)
        assert paused.status is RunStatus.PAUSED
        with pytest.raises(ValidationFailed):
            await engine.resume(run.id, {"a value": "for a paused run"})
        assert (await engine.resume(run.id)).status is RunStatus.QUEUED
    async with make_engine("primitives") as engine:
        done = await engine.wait(run.id, timeout=30)
        assert done.output == {"x": 111, "trail": ["a", "b", "c"]}
        waiting = await engine.wait(
            (await engine.start("primitives.deadline", {"seconds": 60})).id, timeout=30
        )
        with pytest.raises(TransitionConflict):
            await engine.pause(waiting.id)


async def test_a_pause_answered_while_queued_does_not_pause_the_resumed_run(
    make_engine: EngineFactory, db_url: str
) -> None:
    async with make_engine("primitives", run_worker=False) as engine:
        run = await engine.start("primitives.chain", {"x": 0, "trail": []})
    db = await open_database(db_url)
    try:  # as a worker leaves a run it released at shutdown while a pause was asked of it
        await db.write(
            lambda conn: conn.execute(
                update(runs_table).where(runs_table.c.id == run.id).values(pause_requested=True)
            )
        )
    finally:
        await db.close()
    async with make_engine("primitives", run_worker=False) as engine:
        assert (await engine.pause(run.id)).pause_requested is False
        await engine.resume(run.id)
    async with make_engine("primitives") as engine:
        done = await engine.wait(run.id, timeout=30)
    assert done.status is RunStatus.COMPLETED
    assert done.output == {"x": 111, "trail": ["a", "b", "c"]}


async def test_cancel_of_a_running_async_node_cancels_its_task(
    make_engine: EngineFactory,
) -> None:
    primitives.HANG_ENTERED.clear()
    primitives.HANG_CANCELLED.clear()
    async with make_engine("primitives") as engine:
        run = await engine.start("primitives.hang", {"x": 0})
        assert await asyncio.to_thread(primitives.HANG_ENTERED.wait, 30)
        await engine.cancel(run.id)
        cancelled = await engine.wait(run.id, timeout=30)
        assert cancelled.status is RunStatus.CANCELLED
        assert primitives.HANG_CANCELLED.is_set()  # the node's task saw CancelledError


async def test_a_cancel_made_by_another_engine_stops_the_node_before_any_heartbeat(
    make_engine: EngineFactory,
) -> None:
    primitives.HANG_ENTERED.clear()
    primitives.HANG_CANCELLED.clear()
    # Heartbeats far apart: only the worker's poll for stop requests can see the cancel.
    slow_beats = {"lease_ttl_s": 120.0, "heartbeat_interval_s": 60.0}
    async with (
        make_engine("primitives", **slow_beats) as executing,
        make_engine("primitives", run_worker=False) as other,
    ):
        run = await executing.start("primitives.hang", {"x": 0})
        assert await asyncio.to_thread(primitives.HANG_ENTERED.wait, 30)
        requested = await other.cancel(run.id)
        assert requested.cancel_requested
        cancelled = await other.wait(run.id, timeout=20)
        assert cancelled.status is RunStatus.CANCELLED
        assert primitives.HANG_CANCELLED.is_set()


async def test_cancel_racing_completion_has_exactly_one_winner(
    make_engine: EngineFactory, gated: ModuleType
) -> None:
    outcomes: dict[str, int] = {"cancel won": 0, "completion won": 0}
    async with make_engine("gated") as engine:
        for trial in range(30):
            gated.ENTERED.clear()
            gated.GATE.clear()
            run = await engine.start("gated.blocking", {"x": 0})
            await entered(gated)

            async def cancel(run_id: str = run.id) -> bool:
                try:
                    await engine.cancel(run_id)
                except TransitionConflict:
                    return False
                return True

            if trial % 3 == 0:  # cancel while the node is in flight
                cancel_ok, _ = await asyncio.gather(cancel(), asyncio.to_thread(gated.GATE.set))
            elif trial % 3 == 1:  # the node finishes as the cancel is made
                gated.GATE.set()
                cancel_ok = await cancel()
            else:  # the last step runs (or the run completes) as the cancel is made
                gated.GATE.set()
                async for event in engine.runs.watch(run.id, until_finished=True):
                    if event.data.get("node") == "block":
                        break
                cancel_ok = await cancel()
            final = await engine.wait(run.id, timeout=30)
            # the canceller was told yes exactly when the run ended cancelled
            expected = RunStatus.CANCELLED if cancel_ok else RunStatus.COMPLETED
            assert final.status is expected
            outcomes["cancel won" if cancel_ok else "completion won"] += 1
    print(f"\ncancel vs completion, 30 trials: {outcomes}")


async def test_a_retry_policy_retries_the_node_in_place(make_engine: EngineFactory) -> None:
    twice, always = f"twice-{uuid.uuid4()}", f"always-{uuid.uuid4()}"  # attempts per key
    async with make_engine("primitives") as engine:
        flaky = await engine.start(
            "primitives.resilient", {"key": twice, "failures": 2, "slow_s": 0}
        )
        broken = await engine.start(
            "primitives.resilient", {"key": always, "failures": 99, "slow_s": 0}
        )
        flaky = await engine.wait(flaky.id, timeout=30)
        broken = await engine.wait(broken.id, timeout=30)
    assert flaky.status is RunStatus.COMPLETED
    assert primitives.ATTEMPTS[twice] == 3
    assert broken.status is RunStatus.FAILED
    assert primitives.ATTEMPTS[always] == 3  # max_attempts, then the run fails
    assert broken.error is not None
    assert (broken.error.type, broken.error.node) == ("ConnectionError", "wobbly")


async def test_a_node_past_its_timeout_fails_the_run_with_node_timeout(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("primitives") as engine:
        run = await engine.start(
            "primitives.resilient", {"key": "slow", "failures": 0, "slow_s": 30}
        )
        failed = await engine.wait(run.id, timeout=30)
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None
    assert (failed.error.type, failed.error.node) == ("NodeTimeout", "slow")
    assert "within 0.2 s" in failed.error.message


async def test_fork_with_a_state_patch_leaves_the_original_unchanged(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("primitives") as engine:
        source = await engine.wait(
            (await engine.start("primitives.chain", {"x": 0, "trail": []})).id, timeout=30
        )
        assert source.output == {"x": 111, "trail": ["a", "b", "c"]}
        history = await engine.runs.history(source.id)
        after_a = next(c for c in history if c.nodes == ("a",))
        assert after_a.state == {"x": 1, "trail": ["a"]}

        fork = await engine.fork(source.id, after_a.id, update={"x": 1000})
        assert fork.id != source.id
        assert fork.forked_from == source.id
        fork = await engine.wait(fork.id, timeout=30)
        assert fork.status is RunStatus.COMPLETED
        # b and c ran again on the patched state; a did not
        assert fork.output == {"x": 1110, "trail": ["a", "b", "c"]}

        plain = await engine.wait((await engine.fork(source.id, after_a.id)).id, timeout=30)
        assert plain.output == {"x": 111, "trail": ["a", "b", "c"]}
        # the steps after the checkpoint ran again (a replay), not copied from the source
        nodes = [e.data["node"] for e in await engine.runs.events(plain.id) if e.kind == "node"]
        assert nodes == ["b", "c"]

        assert await engine.get(source.id) == source  # the original is unchanged
        assert [c.id for c in await engine.runs.history(source.id)] == [c.id for c in history]

        with pytest.raises(CheckpointNotFound):
            await engine.fork(source.id, "no-such-checkpoint")
        with pytest.raises(ValidationFailed):
            await engine.fork(source.id, after_a.id, update={"x": float("nan")})
        with pytest.raises(ValidationFailed):  # LangGraph's InvalidUpdateError, as a 422
            await engine.fork(source.id, after_a.id, update="not a state patch")


async def test_answers_must_be_an_object_of_interrupt_ids(make_engine: EngineFactory) -> None:
    from graphrun import ValidationFailed

    async with make_engine(APPS / "fidelity") as engine:
        run = await engine.start("fidelity.parallel")
        run = await engine.wait(run.id, timeout=60)
        for bad in ([1], {}, "x"):
            with pytest.raises(ValidationFailed) as info:
                await engine.resume(run.id, answers=bad)  # type: ignore[arg-type]
            assert info.value.errors[0]["pointer"] == "/answers"
        assert (await engine.get(run.id)).status.value == "waiting"
