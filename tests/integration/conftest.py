"""Fixtures for integration tests."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.conftest import APPS


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
