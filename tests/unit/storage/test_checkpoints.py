"""The checkpointer: buffered writes commit with the next checkpoint, fenced by the lease."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from sqlalchemy import func, select

from graphrun import errors
from graphrun.storage import Database, checkpoints, lifecycle
from graphrun.storage import runs as runs_store
from graphrun.storage.schema import checkpoint_writes
from graphrun.storage.schema import checkpoints as checkpoints_table
from tests.unit.storage.test_runs import claim_one, new_run


async def count(db: Database, table: Any) -> int:
    return await db.read(
        lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one()
    )


async def execution_for(db: Database) -> checkpoints.Execution:
    await lifecycle.insert(db, new_run())
    run = await claim_one(db)
    fence = runs_store.Fence(run_id=run.id, owner="w1", epoch=run.lease_epoch)
    return checkpoints.Execution(fence=fence, lease_ttl_s=30)


def config(execution: checkpoints.Execution, checkpoint_id: str | None = None) -> Any:
    conf: dict[str, Any] = {
        "thread_id": execution.fence.run_id,
        "checkpoint_ns": "",
        checkpoints.EXECUTION_KEY: execution,
    }
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


async def test_writes_are_buffered_visible_and_committed_with_the_next_checkpoint(
    db: Database,
) -> None:
    saver = checkpoints.GraphrunCheckpointer(db)
    execution = await execution_for(db)
    first = empty_checkpoint()
    saved = await saver.aput(config(execution), first, {"step": -1}, {})
    await saver.aput_writes(config(execution, first["id"]), [("x", 1), ("y", 2)], "task-1")
    assert await count(db, checkpoint_writes) == 0
    loaded = await saver.aget_tuple(config(execution, first["id"]))
    assert loaded is not None
    assert loaded.pending_writes == [("task-1", "x", 1), ("task-1", "y", 2)]
    second = empty_checkpoint()
    await saver.aput(
        {**config(execution, saved["configurable"]["checkpoint_id"])}, second, {"step": 0}, {}
    )
    assert await count(db, checkpoint_writes) == 2
    assert execution.pending_writes == []
    run = await runs_store.get(db, execution.fence.run_id)
    assert run is not None
    assert run.checkpoint_id == second["id"]


async def test_a_stale_lease_writes_no_checkpoint_and_no_writes(db: Database) -> None:
    saver = checkpoints.GraphrunCheckpointer(db)
    execution = await execution_for(db)
    await saver.aput(config(execution), empty_checkpoint(), {"step": -1}, {})
    stale = checkpoints.Execution(
        fence=runs_store.Fence(
            run_id=execution.fence.run_id, owner="w1", epoch=execution.fence.epoch - 1
        ),
        lease_ttl_s=30,
    )
    await saver.aput_writes(config(stale, "c"), [("x", 1)], "task-1")
    with pytest.raises(errors.LeaseLost):
        await saver.aput(config(stale), empty_checkpoint(), {"step": 0}, {})
    assert await count(db, checkpoints_table) == 1
    assert await count(db, checkpoint_writes) == 0


async def test_strict_serializer_refuses_pickle_and_unknown_types() -> None:
    serde = checkpoints.strict_serializer()
    assert serde.pickle_fallback is False
    with pytest.raises(NotImplementedError):
        serde.loads_typed(("pickle", b"\x80\x04K\x01."))

    # A type the graph did not declare is not reconstructed on load (no code runs for it).
    restored = serde.loads_typed(serde.dumps_typed({"obj": Undeclared(1)}))
    assert not isinstance(restored["obj"], Undeclared)
    allowed = serde.with_msgpack_allowlist([(Undeclared.__module__, "Undeclared")])
    assert allowed.loads_typed(allowed.dumps_typed(Undeclared(2))) == Undeclared(2)


@dataclass
class Undeclared:
    value: int
