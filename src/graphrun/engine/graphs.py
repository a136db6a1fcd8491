"""Loaded workflows' graphs bound to the engine's checkpointer (and store).

Each workflow's checkpoints may rebuild only the types it declares (`allowlist`), so each
gets its own view of the one checkpointer. A factory's graph is built per run, with the
run's config, as LangGraph's server calls graph factories; every other shape is bound once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .allowlist import allowlist_for_graph, allowlist_for_modules

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.pregel import Pregel

    from graphrun.apps.graph_source import GraphSource
    from graphrun.storage.checkpoints import GraphrunCheckpointer

__all__ = ("BoundGraph", "bind_graph")


@dataclass(frozen=True, eq=False)
class BoundGraph:
    """A workflow's graph on graphrun's persistence: what the worker executes."""

    source: GraphSource
    checkpointer: BaseCheckpointSaver[Any]
    store: Any
    #: The graph bound once: it reads and forks a run's state, and draws the workflow.
    template: Pregel[Any, Any, Any, Any]

    async def for_run(self, config: dict[str, Any]) -> Pregel[Any, Any, Any, Any]:
        """The graph one run executes on (a factory's is built for ``config``)."""
        if not self.source.per_run:
            return self.template
        return await self.source.build(config, self.checkpointer, self.store)


def bind_graph(
    source: GraphSource,
    saver: GraphrunCheckpointer,
    store: Any = None,
    app_modules: Iterable[str] = (),
) -> BoundGraph:
    """Bind a workflow's graph to ``saver`` and ``store``.

    Its checkpoints may rebuild the types its state declares and the data classes its
    app's own modules define, nothing else.
    """
    allowed = allowlist_for_graph(source.builder) | allowlist_for_modules(app_modules)
    checkpointer = saver.with_allowlist(allowed)
    return BoundGraph(
        source=source,
        checkpointer=checkpointer,
        store=store,
        template=source.bind(checkpointer, store),
    )
