"""Schedules: validated specs, exactly one run per due time across engines, missed fires."""

from __future__ import annotations

import itertools
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from graphrun import Engine, ScheduleNotFound, ValidationFailed, WorkflowNotFound
from graphrun.errors import ScheduleExists
from graphrun.storage import open_database
from graphrun.storage.schema import schedules
from tests.conftest import EngineFactory, eventually

CHAIN_INPUT = {"x": 0, "trail": []}


@pytest.mark.parametrize(
    ("spec", "pointer"),
    [
        ({"cron": "61 * * * *"}, "/cron"),
        ({"cron": "* * *"}, "/cron"),
        ({"cron": "*/0 * * * *"}, "/cron"),
        ({"cron": "0 0 * * 8"}, "/cron"),
        ({"cron": "@reboot"}, "/cron"),
        ({"cron": "0 0 31 2 *"}, "/cron"),  # never fires
        ({"cron": "* * * * * *"}, "/cron"),  # six fields: sub-minute
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "/timezone"),
        ({"cron": "0 9 * * *", "timezone": "../../etc/passwd"}, "/timezone"),
        ({"every": 0}, "/every"),
        ({"every": 0.5}, "/every"),
        ({"every": float("inf")}, "/every"),
        ({"cron": "0 9 * * *", "every": 60}, ""),
        ({}, ""),
    ],
)
async def test_invalid_specs_are_refused(
    make_engine: EngineFactory, spec: dict[str, object], pointer: str
) -> None:
    async with make_engine("primitives", run_worker=False) as engine:
        with pytest.raises(ValidationFailed) as refused:
            await engine.schedules.create("nightly", "primitives.chain", CHAIN_INPUT, **spec)  # type: ignore[arg-type]
        assert refused.value.details["errors"][0]["pointer"] == pointer
        assert await engine.schedules.list_all() == []


async def test_schedule_crud_and_its_checks(make_engine: EngineFactory) -> None:
    async with make_engine("primitives", run_worker=False) as engine:
        created = await engine.schedules.create(
            "nightly", "primitives.chain", CHAIN_INPUT, cron="30 2 * * *", timezone="Europe/Riga"
        )
        assert created.next_fire_at.timestamp() > time.time()
        local = created.next_fire_at.astimezone(ZoneInfo("Europe/Riga"))
        assert (local.hour, local.minute) == (2, 30)
        with pytest.raises(ScheduleExists):
            await engine.schedules.create("nightly", "primitives.chain", CHAIN_INPUT, every=60)
        with pytest.raises(ValidationFailed):
            await engine.schedules.create("Bad Id", "primitives.chain", CHAIN_INPUT, every=60)
        with pytest.raises(ValidationFailed):
            # A value the graph's reducer refuses (LangGraph's own input step fails on it).
            await engine.schedules.create("typed", "primitives.chain", {"trail": 5}, every=60)
        with pytest.raises(WorkflowNotFound):
            await engine.schedules.create("ghost", "primitives.ghost", {}, every=60)
        assert [s.id for s in await engine.schedules.list_all()] == ["nightly"]
        assert (await engine.schedules.get("nightly")).cron == "30 2 * * *"
        await engine.schedules.delete("nightly")
        with pytest.raises(ScheduleNotFound):
            await engine.schedules.delete("nightly")
        with pytest.raises(ScheduleNotFound):
            await engine.schedules.get("nightly")


async def _scheduled_runs(engine: Engine, schedule_id: str) -> list[float]:
    page = await engine.list_runs(workflow="primitives.chain", limit=1000)
    prefix = f"schedule:{schedule_id}:"
    keys = [r.idempotency_key or "" for r in page.runs]
    return sorted(float(k.removeprefix(prefix)) for k in keys if k.startswith(prefix))


async def _count_at_least(engine: Engine, schedule_id: str, count: int) -> bool:
    return len(await _scheduled_runs(engine, schedule_id)) >= count


async def test_two_engines_fire_each_tick_of_a_one_second_schedule_once(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("primitives") as first, make_engine("primitives") as second:
        await first.schedules.create("tick", "primitives.chain", CHAIN_INPUT, every=1)
        # Polling the database: another engine starts these.
        await eventually(
            lambda: _count_at_least(second, "tick", 10), "ten ticks", timeout_s=30, every_s=0.25
        )
        await first.schedules.delete("tick")
        due = await _scheduled_runs(first, "tick")
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(due)]
    print(f"\nschedule every 1 s, two engines: {len(due)} ticks, gaps {sorted(set(gaps))}")
    assert len(due) >= 10
    assert len(set(due)) == len(due)  # no tick started twice
    assert set(gaps) == {1.0}  # and none skipped


async def test_fires_missed_while_down_fire_once_on_recovery(
    make_engine: EngineFactory, db_url: str
) -> None:
    async with make_engine("primitives", run_worker=False) as engine:
        await engine.schedules.create("yearly", "primitives.chain", CHAIN_INPUT, cron="0 0 1 1 *")
    db = await open_database(db_url)
    try:  # as if every engine had been down since an hour before it was due
        await db.write(
            lambda conn: conn.execute(
                update(schedules).values(next_fire_at=time.time() - 400 * 24 * 3600)
            )
        )
    finally:
        await db.close()
    async with make_engine("primitives") as engine:
        # Polling the database for the run the loop starts.
        await eventually(
            lambda: _count_at_least(engine, "yearly", 1), "the missed fire", every_s=0.1
        )
        assert len(await _scheduled_runs(engine, "yearly")) == 1
        schedule = await engine.schedules.get("yearly")
        assert schedule.next_fire_at.timestamp() > time.time()
        assert schedule.last_run_id is not None
        run = await engine.wait(schedule.last_run_id, timeout=30)
        assert run.output == {"x": 111, "trail": ["a", "b", "c"]}
