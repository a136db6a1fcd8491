"""PostgreSQL group commit: statements arriving together share a transaction, not a fate."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from graphrun import errors
from graphrun.storage import Database, lifecycle, open_database
from graphrun.storage import checkpoints as checkpoints_store
from graphrun.storage import runs as runs_store
from graphrun.storage.backends import pg_step as step_write
from graphrun.storage.schema import checkpoints, run_events
from tests.unit.storage.test_runs import claim_one, new_run

pytestmark = pytest.mark.postgres_only

INSERT = "INSERT INTO batch_probe (v) VALUES (%(v)s) RETURNING v"


async def probe_table(db: Database) -> None:
    def job(conn):  # type: ignore[no-untyped-def]
        conn.execute(text("CREATE TABLE IF NOT EXISTS batch_probe (v int NOT NULL)"))
        conn.execute(text("TRUNCATE batch_probe"))

    await db.write(job)


async def probe_values(db: Database) -> list[int]:
    rows = await db.read(lambda c: list(c.execute(text("SELECT v FROM batch_probe"))))
    return sorted(r[0] for r in rows)


async def test_a_failing_statement_fails_alone_and_the_rest_of_its_batch_commits(
    db: Database,
) -> None:
    await probe_table(db)
    # Queued in one go, so they are committed together (one batch holds up to 128).
    outcomes = await asyncio.gather(
        *(db.batched(INSERT, {"v": v}, order=str(v)) for v in range(10)),
        db.batched(INSERT.replace("%(v)s", "%(v)s::int"), {"v": None}, order="5"),  # NOT NULL
        return_exceptions=True,
    )
    assert outcomes[:10] == list(range(10))
    assert isinstance(outcomes[10], errors.StorageError)
    assert "null value" in str(outcomes[10])
    assert await probe_values(db) == list(range(10))


async def test_a_cancelled_caller_does_not_withdraw_its_statement(db: Database) -> None:
    await probe_table(db)
    waiter = asyncio.ensure_future(db.batched(INSERT, {"v": 7}, order="a"))
    await asyncio.sleep(0)  # queued
    waiter.cancel()
    await db.close()  # drains what is queued
    reopened = await open_database(str(db.url.render_as_string(hide_password=False)))
    try:
        assert await probe_values(reopened) == [7]
    finally:
        await reopened.close()


async def test_a_step_of_a_lost_lease_writes_nothing_while_its_batch_mates_commit(
    db: Database,
) -> None:
    for _ in range(3):
        await lifecycle.insert(db, new_run())
    claimed = [await claim_one(db, "w1") for _ in range(3)]
    fences = [runs_store.Fence(run_id=r.id, owner="w1", epoch=r.lease_epoch) for r in claimed]
    stale = runs_store.Fence(run_id=fences[1].run_id, owner="w1", epoch=fences[1].epoch - 1)

    def step(fence: runs_store.Fence) -> dict[str, object]:
        row = {
            "thread_id": fence.run_id,
            "checkpoint_ns": "",
            "checkpoint_id": "c1",
            "parent_checkpoint_id": None,
            "type": "msgpack",
            "checkpoint": b"\x00\x01",
            "metadata_type": "msgpack",
            "metadata": b"\x80",
        }
        taken = checkpoints_store.Flush(
            run_id=fence.run_id, checkpoints=[], writes=[], events=[("node", {"node": "a"})]
        )
        return step_write.step_params(
            fence, lease_ttl_s=30, progress="c1", taken=taken, checkpoint=row
        )

    counts = await asyncio.gather(
        *(
            db.batched(step_write.STEP_SQL, step(f), order=f.run_id)
            for f in (fences[0], stale, fences[2])
        )
    )
    assert counts == [1, 0, 1]

    def saved(conn):  # type: ignore[no-untyped-def]
        cps = {r.thread_id for r in conn.execute(checkpoints.select())}
        evs = [r.run_id for r in conn.execute(run_events.select()) if r.kind == "node"]
        return cps, evs

    cps, evs = await db.read(saved)
    assert cps == {fences[0].run_id, fences[2].run_id}
    assert sorted(evs) == sorted([fences[0].run_id, fences[2].run_id])
    after = {r.id: r for r in [await runs_store.get(db, f.run_id) for f in fences] if r}
    assert after[fences[0].run_id].checkpoint_id == "c1"
    assert after[fences[1].run_id].checkpoint_id is None
