"""The checkpointer's sync methods: from a node's thread they run on the engine's loop."""

from __future__ import annotations

import asyncio

import pytest

from graphrun import SyncCallOnLoop
from graphrun.storage import Database
from graphrun.storage.checkpoints import GraphrunCheckpointer

CONFIG = {"configurable": {"thread_id": "t-1", "checkpoint_ns": ""}}


async def test_a_sync_call_on_the_loop_is_refused_not_deadlocked(db: Database) -> None:
    saver = GraphrunCheckpointer(db)
    with pytest.raises(SyncCallOnLoop, match="async method"):
        saver.get_tuple(CONFIG)  # type: ignore[arg-type]


async def test_sync_calls_from_a_thread_run_on_the_loop(db: Database) -> None:
    saver = GraphrunCheckpointer(db)
    assert await asyncio.to_thread(saver.get_tuple, CONFIG) is None  # type: ignore[arg-type]
    assert await asyncio.to_thread(lambda: list(saver.list(CONFIG))) == []  # type: ignore[arg-type]
    await asyncio.to_thread(saver.delete_thread, "t-1")
