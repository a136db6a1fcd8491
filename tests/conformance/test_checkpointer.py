"""graphrun's checkpointer passes LangGraph's checkpoint conformance suite, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from langgraph.checkpoint.conformance import checkpointer_test, validate

from graphrun.storage import open_database
from graphrun.storage.checkpoints import GraphrunCheckpointer
from tests.conftest import empty_postgres


async def test_checkpointer_passes_langgraph_conformance(db_url: str, tmp_path: Path) -> None:
    counter = iter(range(1000))

    async def fresh() -> str:
        """A database of its own for each of the suite's checkpointers."""
        if db_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path}/conformance-{next(counter)}.db"
        await asyncio.to_thread(empty_postgres, db_url)
        return db_url

    @checkpointer_test(name="GraphrunCheckpointer")
    async def factory() -> AsyncIterator[GraphrunCheckpointer]:
        db = await open_database(await fresh())
        try:
            yield GraphrunCheckpointer(db)
        finally:
            await db.close()

    report = await validate(factory)
    print(
        "checkpoint conformance: "
        + ", ".join(
            f"{name} {r.tests_passed}/{r.tests_passed + r.tests_failed}"
            if r.detected
            else f"{name} not implemented"
            for name, r in report.results.items()
        )
    )
    failures = {
        name: result.failures
        for name, result in report.results.items()
        if result.detected and not result.passed
    }
    assert failures == {}
    detected = {name for name, result in report.results.items() if result.detected}
    assert {"put", "put_writes", "get_tuple", "list", "delete_thread", "copy_thread"} <= detected
