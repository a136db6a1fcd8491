"""The runs aggregate: compare-and-set transitions, claims, leases and fencing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from graphrun import errors
from graphrun.ids import RunIdFactory
from graphrun.storage import Database, RunStatus, events, lifecycle
from graphrun.storage import runs as runs_store
from graphrun.storage.runs import Change
from graphrun.storage.schema import runs

IDS = RunIdFactory()


def new_run(key: str | None = None, value: int = 1) -> runs_store.NewRun:
    return runs_store.NewRun(
        id=IDS.new(),
        workflow="app.flow",
        definition_version="v1",
        input={"x": value},
        input_hash=f"hash-{value}",
        idempotency_key=key,
    )


async def request_cancel(db: Database, run_id: str) -> None:
    """Ask a running run to cancel (it ends cancelled at its next step or lease expiry)."""
    await lifecycle.transition(
        db,
        run_id,
        action="cancel",
        allowed=(RunStatus.RUNNING,),
        change=Change(cancel_requested=True),
    )


async def claim_one(db: Database, owner: str = "w1", ttl: float = 30.0) -> runs_store.Run:
    (run,) = await lifecycle.claim(
        db, owner=owner, workflows=["app.flow"], limit=1, lease_ttl_s=ttl
    )
    return run


async def test_insert_creates_a_queued_run_with_an_event(db: Database) -> None:
    run, created = await lifecycle.insert(db, new_run())
    assert created
    assert run.status is RunStatus.QUEUED
    assert run.version == 0
    assert run.created_at == run.updated_at


async def test_insert_with_idempotency_key_returns_the_first_run(db: Database) -> None:
    first, created = await lifecycle.insert(db, new_run("k1"))
    again, created_again = await lifecycle.insert(db, new_run("k1"))
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    with pytest.raises(errors.IdempotencyConflict):
        await lifecycle.insert(db, new_run("k1", value=2))


async def test_claim_takes_oldest_queued_runs_and_bumps_the_epoch(db: Database) -> None:
    ids = [(await lifecycle.insert(db, new_run()))[0].id for _ in range(3)]
    claimed = await lifecycle.claim(db, owner="w1", workflows=["app.flow"], limit=2, lease_ttl_s=30)
    assert [r.id for r in claimed] == ids[:2]
    assert all(
        r.status is RunStatus.RUNNING and r.lease_owner == "w1" and r.lease_epoch == 1
        for r in claimed
    )
    assert (
        await lifecycle.claim(db, owner="w2", workflows=["other.flow"], limit=5, lease_ttl_s=30)
        == []
    )


async def test_transition_is_compare_and_set_on_status_and_version(db: Database) -> None:
    run, _ = await lifecycle.insert(db, new_run())
    moved = await lifecycle.transition(
        db,
        run.id,
        action="cancel",
        allowed=(RunStatus.QUEUED,),
        change=Change(status=RunStatus.CANCELLED),
        seen_version=run.version,
    )
    assert moved.status is RunStatus.CANCELLED
    assert moved.version == run.version + 1
    assert moved.finished_at is not None
    with pytest.raises(errors.TransitionConflict) as info:
        await lifecycle.transition(
            db,
            run.id,
            action="cancel",
            allowed=(RunStatus.QUEUED,),
            change=Change(status=RunStatus.CANCELLED),
        )
    assert info.value.status == "cancelled"


async def test_transition_with_a_stale_version_changes_nothing(db: Database) -> None:
    run, _ = await lifecycle.insert(db, new_run())
    await lifecycle.transition(
        db, run.id, action="touch", allowed=(RunStatus.QUEUED,), change=Change()
    )
    with pytest.raises(errors.TransitionConflict, match="changed while"):
        await lifecycle.transition(
            db,
            run.id,
            action="cancel",
            allowed=(RunStatus.QUEUED,),
            change=Change(status=RunStatus.CANCELLED),
            seen_version=run.version,
        )
    current = await runs_store.get(db, run.id)
    assert current is not None
    assert current.status is RunStatus.QUEUED


async def test_transition_of_unknown_run_is_not_found(db: Database) -> None:
    with pytest.raises(errors.RunNotFound):
        await lifecycle.transition(
            db, str(uuid.uuid4()), action="cancel", allowed=(RunStatus.QUEUED,), change=Change()
        )


async def test_concurrent_transitions_have_exactly_one_winner(db: Database) -> None:
    run, _ = await lifecycle.insert(db, new_run())

    async def attempt() -> bool:
        try:
            await lifecycle.transition(
                db,
                run.id,
                action="cancel",
                allowed=(RunStatus.QUEUED,),
                change=Change(status=RunStatus.CANCELLED),
                seen_version=run.version,
            )
        except errors.TransitionConflict:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(32)))
    assert results.count(True) == 1


async def test_expired_lease_is_requeued_and_fences_the_old_owner(db: Database) -> None:
    await lifecycle.insert(db, new_run())
    old = await claim_one(db, "w1", ttl=-1.0)  # already expired
    assert await lifecycle.requeue_expired(db) == [old.id]
    new = await claim_one(db, "w2")
    assert new.lease_epoch == old.lease_epoch + 1
    stale = runs_store.Fence(run_id=old.id, owner="w1", epoch=old.lease_epoch)
    with pytest.raises(errors.LeaseLost):
        await lifecycle.transition(
            db,
            old.id,
            action="complete",
            allowed=(RunStatus.RUNNING,),
            change=Change(status=RunStatus.COMPLETED),
            fence=stale,
        )
    current = await runs_store.get(db, old.id)
    assert current is not None
    assert (current.status, current.lease_owner) == (RunStatus.RUNNING, "w2")


async def test_requeue_expired_cancels_runs_whose_cancel_was_requested(db: Database) -> None:
    cancelled = []
    for _ in range(2):
        await lifecycle.insert(db, new_run())
        run = await claim_one(db, ttl=-1.0)
        await request_cancel(db, run.id)
        cancelled.append(run.id)
    assert sorted(await lifecycle.requeue_expired(db)) == sorted(cancelled)
    found = await runs_store.get_many(db, cancelled)
    assert {r.status for r in found.values()} == {RunStatus.CANCELLED}
    # What each holds is counted as it ends: its events (created, queued, running, cancel
    # asked, cancelled), no checkpoint.
    held = await db.rows(
        select(runs.c.id, runs.c.n_events, runs.c.n_checkpoints, runs.c.checkpoint_bytes).where(
            runs.c.id.in_(cancelled)
        )
    )
    assert {r["id"]: (r["n_events"], r["n_checkpoints"], r["checkpoint_bytes"]) for r in held} == {
        i: (await count_events(db, i), 0, 0) for i in cancelled
    }


async def count_events(db: Database, run_id: str) -> int:
    """The run's events, counted now."""
    return len(await events.list_for_run(db, run_id, after_id=0, limit=1000))


async def test_heartbeat_extends_only_the_owners_leases(db: Database) -> None:
    for _ in range(2):
        await lifecycle.insert(db, new_run())
    mine = await claim_one(db, "w1", ttl=5)
    other = await claim_one(db, "w2", ttl=5)
    held = await runs_store.heartbeat(db, owner="w1", run_ids=[mine.id, other.id], lease_ttl_s=60)
    assert [(h.run_id, h.epoch, h.cancel_requested) for h in held] == [(mine.id, 1, False)]
    refreshed = await runs_store.get_many(db, [mine.id, other.id])
    assert refreshed[mine.id].lease_expires_at > mine.lease_expires_at  # type: ignore[operator]
    assert refreshed[other.id].lease_expires_at == other.lease_expires_at


async def test_a_requested_cancel_wins_over_release_and_wait(db: Database) -> None:
    for target in (RunStatus.QUEUED, RunStatus.WAITING):
        await lifecycle.insert(db, new_run())
        run = await claim_one(db)
        fence = runs_store.Fence(run_id=run.id, owner="w1", epoch=run.lease_epoch)
        await request_cancel(db, run.id)
        ended = await lifecycle.transition(
            db,
            run.id,
            action="release",
            allowed=(RunStatus.RUNNING,),
            change=Change(status=target, release_lease=True),
            fence=fence,
            cancel_wins=True,
        )
        assert ended.status is RunStatus.CANCELLED
        assert ended.finished_at is not None
    await lifecycle.insert(db, new_run())
    run = await claim_one(db)
    kept = await lifecycle.transition(
        db,
        run.id,
        action="release",
        allowed=(RunStatus.RUNNING,),
        change=Change(status=RunStatus.QUEUED),
        cancel_wins=True,
    )
    assert kept.status is RunStatus.QUEUED
    assert kept.finished_at is None


async def test_list_page_filters_and_paginates_newest_first(db: Database) -> None:
    ids = [(await lifecycle.insert(db, new_run()))[0].id for _ in range(5)]
    await lifecycle.transition(
        db,
        ids[0],
        action="cancel",
        allowed=(RunStatus.QUEUED,),
        change=Change(status=RunStatus.CANCELLED),
    )
    page = await runs_store.list_page(db, statuses=[RunStatus.QUEUED], limit=2)
    assert [r.id for r in page.runs] == [ids[4], ids[3]]
    assert page.next_cursor is not None
    page2 = await runs_store.list_page(
        db, statuses=[RunStatus.QUEUED], limit=2, cursor=page.next_cursor
    )
    assert [r.id for r in page2.runs] == [ids[2], ids[1]]
    assert page2.next_cursor is None
    assert [r.id for r in (await runs_store.list_page(db, workflow="nope")).runs] == []


@pytest.mark.parametrize("cursor", ["garbage", "W10=", "WyJhIiwxXQ=="])
async def test_list_page_rejects_bad_cursors_and_limits(db: Database, cursor: str) -> None:
    with pytest.raises(errors.ValidationFailed):
        await runs_store.list_page(db, cursor=cursor)
    with pytest.raises(errors.ValidationFailed):
        await runs_store.list_page(db, limit=0)


async def test_worker_rows_register_touch_and_unregister(db: Database) -> None:
    from sqlalchemy import select

    from graphrun.storage import workers
    from graphrun.storage.schema import workers as table

    await workers.register(db, worker_id="w1", hostname="h", pid=1, workflows=["a.b"])
    (before,) = await db.rows(select(table))
    await workers.touch(db, "w1")
    (after,) = await db.rows(select(table))
    assert after["heartbeat_at"] >= before["heartbeat_at"]
    assert after["workflows"] == ["a.b"]
    await workers.unregister(db, "w1")
    assert await db.rows(select(table)) == []


def test_a_change_writes_only_what_it_sets_and_merges_with_the_later_winning() -> None:
    from graphrun.storage.records import RunError
    from graphrun.waits import WaitingOn, WaitKind

    assert Change().columns() == {}
    assert Change(resume=None, pause_requested=False).columns() == {
        "resume": None,
        "pause_requested": False,
    }
    wait = WaitingOn(id="i", kind=WaitKind.TIMER)
    error = RunError(code="node_error", type="KeyError", message="k")
    columns = Change(
        status=RunStatus.WAITING, waiting_for=(wait,), error=error, release_lease=True
    ).columns()
    assert columns == {
        "status": RunStatus.WAITING,
        "waiting_for": [wait.to_json()],
        "error": error.to_json(),
        "lease_owner": None,
        "lease_expires_at": None,
    }
    merged = Change(status=RunStatus.QUEUED, pause_requested=True).merged(
        Change(pause_requested=False, checkpoint_id="c")
    )
    assert merged == Change(status=RunStatus.QUEUED, pause_requested=False, checkpoint_id="c")
