"""Shared fixtures: real SQLite files in tmp_path, engines with test-speed settings."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from graphrun import Engine, Settings
from graphrun.storage import Database

APPS = Path(__file__).parent / "apps"
EXAMPLES = Path(__file__).parent.parent / "examples"

#: Test-mode timings (RELIABILITY.md section 5): short leases, fast polling.
TEST_TIMINGS: dict[str, Any] = {
    "lease_ttl_s": 2.0,
    "heartbeat_interval_s": 0.5,
    "poll_interval_s": 0.1,
}

EngineFactory = Callable[..., AbstractAsyncContextManager[Engine]]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'graphrun.db'}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.open(db_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def make_engine(db_url: str) -> EngineFactory:
    """Build an engine on the test database; apps by folder name under tests/apps."""

    def factory(*apps: str | Path, **overrides: Any) -> Engine:
        paths = [a if isinstance(a, Path) else APPS / a for a in apps]
        settings = Settings(database_url=db_url, **{**TEST_TIMINGS, **overrides})
        return Engine(apps=paths, settings=settings)

    return factory


@pytest.fixture
def gated() -> Iterator[ModuleType]:
    """The gated test app's module, with its events reset."""
    if str(APPS / "gated") not in sys.path:
        sys.path.insert(0, str(APPS / "gated"))
    import gated.flows as module

    module.ENTERED.clear()
    module.GATE.clear()
    yield module
    module.GATE.set()  # never leave a thread blocked


async def entered(module: ModuleType) -> None:
    """Wait until the gated app's blocking node has started."""
    assert await asyncio.to_thread(module.ENTERED.wait, 30), "the blocking node never started"
