"""A durable timer survives kill -9 of the process that set it (issue 4).

A worker process runs a workflow to ``sleep(2)``; it is killed with SIGKILL while the run
sleeps; a new worker process wakes the run when it is due, and the run completes.
"""

from __future__ import annotations

import pytest

from graphrun import RunStatus, WaitingOn
from tests.conftest import APPS, EngineFactory


@pytest.mark.acceptance
@pytest.mark.both_databases
@pytest.mark.timeout(120)
async def test_a_run_sleeping_2_s_survives_kill_9_and_wakes_after_restart(
    make_engine: EngineFactory, spawn_worker
) -> None:
    app = APPS / "primitives"
    async with make_engine(app, run_worker=False, poll_interval_s=0.02) as observer:
        worker = await spawn_worker(app)
        run = await observer.start("primitives.sleeper", {"seconds": 2.0})
        async for _ in observer.runs.watch(run.id):
            pass  # until the run waits on its timer
        sleeping = await observer.get(run.id)
        assert sleeping.status is RunStatus.WAITING
        (timer,) = sleeping.waiting_for
        assert isinstance(timer, WaitingOn)
        assert timer.kind == "timer"
        worker.kill()
        await worker.wait()
        # Nothing is running now: the timer lives only in the database.
        assert (await observer.get(run.id)).status is RunStatus.WAITING
        worker = await spawn_worker(app)
        try:
            done = run
            async for _ in observer.runs.watch(run.id, until_finished=True):
                pass
            done = await observer.get(run.id)
        finally:
            worker.kill()
            await worker.wait()
    assert done.status is RunStatus.COMPLETED
    assert done.output == {"seconds": 2.0, "woke": True}
    assert done.attempts == 2  # claimed once to fall asleep, once after it woke
