"""LangGraph's sync interfaces on graphrun's async storage: run the work on the engine's loop.

A sync node runs in a worker thread; when it calls a subgraph's ``invoke()`` or a store's
``get()``, LangGraph calls the checkpointer's and the store's sync methods from that thread.
As LangGraph's own async savers do, those hand the work to the loop the object was made on
and wait for it there. On that loop itself the wait would never end, so it is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from graphrun import errors

__all__ = ("LoopBridge",)

T = TypeVar("T")


class LoopBridge:
    """Runs coroutines on the loop that was running where it was made, from other threads."""

    def __init__(self, what: str, instead: str) -> None:
        #: What calls through the bridge (for the error), and the async methods to use.
        self.what, self.instead = what, instead
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # made outside a loop: only the async methods can be used
            self.loop = None

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """The result of ``work``, run on the bridge's loop.

        Raises:
            SyncCallOnLoop: Called on that loop itself (or the bridge has none).
        """
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self.loop is None or running is self.loop:
            work.close()
            raise errors.SyncCallOnLoop(
                f"A sync {self.what} call was made on the engine's event loop, where it would "
                f"wait for itself: use the async method ({self.instead}), or make the node a "
                "plain def so that LangGraph runs it in a thread."
            )
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()
