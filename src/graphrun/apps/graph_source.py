"""What a manifest entry may name as a workflow's graph, made ready to run durably.

LangGraph programs export graphs in four shapes, and graphrun takes each as LangGraph's own
server does: a ``StateGraph`` builder, a compiled graph (``builder.compile()``,
``create_react_agent(...)``), a functional-API ``@entrypoint``, or a factory function that
returns one of these (called with the run's config). Whatever the shape, a run executes on a
copy bound to graphrun's checkpointer and store, keeping every compile option the app chose
(``interrupt_before``/``interrupt_after``, name, retry and cache policies); a checkpointer
the module had set is replaced, and that is logged, since only graphrun's is durable here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.pregel import Pregel

from graphrun import errors

__all__ = ("CompileOptions", "GraphKind", "GraphSource", "graph_source")

logger = logging.getLogger("graphrun.apps")


class GraphKind(enum.StrEnum):
    """The shape of what a manifest entry names."""

    BUILDER = "builder"
    COMPILED = "compiled"
    ENTRYPOINT = "entrypoint"
    FACTORY = "factory"


@dataclass(frozen=True, kw_only=True)
class CompileOptions:
    """Compile options a manifest sets for a builder (a compiled graph keeps its own)."""

    interrupt_before: tuple[str, ...] | str | None = None
    interrupt_after: tuple[str, ...] | str | None = None
    name: str | None = None

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``StateGraph.compile``."""
        found: dict[str, Any] = {}
        for key in ("interrupt_before", "interrupt_after"):
            value = getattr(self, key)
            if value is not None:
                found[key] = value if isinstance(value, str) else list(value)
        if self.name is not None:
            found["name"] = self.name
        return found


@dataclass(frozen=True, eq=False, kw_only=True)
class GraphSource:
    """A workflow's graph as the app exports it, and how to bind it to graphrun.

    ``template`` is the graph compiled without persistence: its schemas, drawing and
    channels describe the workflow; a factory's template is what it returns for an empty
    config.
    """

    kind: GraphKind
    #: What the module exports (builder, compiled graph, entrypoint or factory).
    target: Any
    template: Pregel[Any, Any, Any, Any]
    options: CompileOptions = field(default_factory=CompileOptions)
    #: The app, and where its manifest names the graph (``module:attr``), for messages.
    app: str = ""
    where: str = ""

    @property
    def per_run(self) -> bool:
        """Whether every run builds its own graph (a factory)."""
        return self.kind is GraphKind.FACTORY

    @property
    def builder(self) -> StateGraph[Any, Any, Any, Any] | None:
        """The ``StateGraph`` behind the template, if it has one (not for an entrypoint)."""
        if isinstance(self.template, CompiledStateGraph):
            return self.template.builder
        return None

    def bind(self, checkpointer: Any, store: Any) -> Pregel[Any, Any, Any, Any]:
        """The template on graphrun's checkpointer and store (not for a factory)."""
        return _bound(self.template, checkpointer, store, self.where)

    async def build(
        self, config: dict[str, Any], checkpointer: Any, store: Any
    ) -> Pregel[Any, Any, Any, Any]:
        """The graph for one run: a factory is called with the run's ``config``.

        Raises:
            AppLoadError: The factory failed or returned something that is not a graph.
        """
        if not self.per_run:
            return self.bind(checkpointer, store)
        graph = await _call_factory(self.target, config, self.app, self.where)
        template = _as_pregel(graph, self.options, self.app, self.where)
        return _bound(template, checkpointer, store, self.where)

    @functools.cached_property
    def dry_run(self) -> Pregel[Any, Any, Any, Any]:
        """The template stopping before its first node: runs only LangGraph's input step."""
        return self.template.copy(
            update={
                "checkpointer": None,
                "store": None,
                "interrupt_before_nodes": "*",
                "interrupt_after_nodes": (),
            }
        )


def graph_source(found: Any, options: CompileOptions, *, app: str, where: str) -> GraphSource:
    """Recognise what a manifest entry names.

    Raises:
        AppLoadError: It is none of the four shapes, does not compile, is compiled already
            but given compile options, or is a factory that fails for an empty config.
    """
    graph = found
    if isinstance(found, StateGraph):
        kind = GraphKind.BUILDER
    elif isinstance(found, CompiledStateGraph):
        kind = GraphKind.COMPILED
    elif isinstance(found, Pregel):
        kind = GraphKind.ENTRYPOINT
    elif callable(found) and not isinstance(found, type):
        _check_factory(found, app, where)
        kind, graph = GraphKind.FACTORY, _run_factory_now(found, app, where)
    else:
        raise errors.AppLoadError(
            app,
            where,
            f"is a {type(found).__name__}; name a StateGraph builder, a compiled graph, an "
            "@entrypoint or a function returning one of these",
        )
    return GraphSource(
        kind=kind,
        target=found,
        template=_as_pregel(graph, options, app, where),
        options=options,
        app=app,
        where=where,
    )


def _as_pregel(
    graph: Any, options: CompileOptions, app: str, where: str
) -> Pregel[Any, Any, Any, Any]:
    """The graph compiled (a builder, with the manifest's options) or as it is."""
    if isinstance(graph, StateGraph):
        return _compiled(graph, options, app, where)
    if not isinstance(graph, Pregel):
        raise errors.AppLoadError(
            app,
            where,
            f"the factory returned a {type(graph).__name__}, not a StateGraph, compiled "
            "graph or @entrypoint",
        )
    if options.arguments():
        raise errors.AppLoadError(
            app,
            where,
            "is already compiled: set interrupt_before, interrupt_after and name where it "
            "is compiled, not in the manifest",
        )
    return graph


def _compiled(
    builder: StateGraph[Any, Any, Any, Any], options: CompileOptions, app: str, where: str
) -> Pregel[Any, Any, Any, Any]:
    try:
        return builder.compile(**options.arguments())
    except Exception as exc:  # LangGraph's own check: no entry point, an unknown node...
        raise errors.AppLoadError(app, where, f"the graph does not compile: {exc}") from exc


#: What a graph factory's one parameter may be called (LangGraph's server passes the config).
FACTORY_PARAMETER = "config"


def _check_factory(factory: Callable[..., Any], app: str, where: str) -> None:
    """Refuse a function that is not a graph factory before calling it (a node, say)."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return
    required = [p for p in parameters if p.default is p.empty and p.kind not in _VARIADIC]
    if not required or (len(required) == 1 and required[0].name == FACTORY_PARAMETER):
        return
    names = ", ".join(p.name for p in required)
    raise errors.AppLoadError(
        app,
        where,
        f"is a function taking ({names}); a graph factory takes no argument or only "
        f"`{FACTORY_PARAMETER}` (name the StateGraph, compiled graph or @entrypoint itself)",
    )


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _factory_arguments(factory: Callable[..., Any], config: dict[str, Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    takes = FACTORY_PARAMETER in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
    return {FACTORY_PARAMETER: config} if takes else {}


def _run_factory_now(factory: Callable[..., Any], app: str, where: str) -> Any:
    """Call a factory at load time with an empty config (an async one on a private loop)."""
    config: dict[str, Any] = {"configurable": {}}
    try:
        result = factory(**_factory_arguments(factory, config))
        if inspect.isawaitable(result):
            # On a private loop in a thread of its own: load_app may be called on a loop.
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                return pool.submit(asyncio.run, _awaited(result)).result()
        return result
    except Exception as exc:
        raise errors.AppLoadError(app, where, f"the graph factory failed: {exc!r}") from exc


async def _awaited(result: Any) -> Any:
    return await result


async def _call_factory(
    factory: Callable[..., Any], config: dict[str, Any], app: str, where: str
) -> Any:
    try:
        if inspect.iscoroutinefunction(factory):
            return await factory(**_factory_arguments(factory, config))
        result = await asyncio.to_thread(factory, **_factory_arguments(factory, config))
        return await result if inspect.isawaitable(result) else result
    except Exception as exc:
        raise errors.AppLoadError(app, where, f"the graph factory failed: {exc!r}") from exc


def _bound(
    graph: Pregel[Any, Any, Any, Any], checkpointer: Any, store: Any, where: str
) -> Pregel[Any, Any, Any, Any]:
    own = graph.checkpointer
    if own not in (None, True, False) and own is not checkpointer:
        logger.info(
            "%s: replacing the checkpointer the module set (%s) with graphrun's",
            where,
            type(own).__name__,
            extra={"action": "checkpointer_replaced"},
        )
    return graph.copy(update={"checkpointer": checkpointer, "store": store})
