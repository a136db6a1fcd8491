"""Run one LangGraph program under raw LangGraph and under graphrun, and say what each did.

Raw LangGraph is the reference (compiled with an `InMemorySaver` and an `InMemoryStore`,
``ainvoke``, then ``Command(resume=...)`` for each answer). What is compared is what a
caller sees at every stop: the interrupts (values and count), the final output (what
``invoke`` returns), or the type of the error. Values are compared in their JSON form, with
the random ids LangChain gives new messages left out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from graphrun import Engine, RunStatus, ValidationFailed
from graphrun.apps import read_manifest
from graphrun.apps.loader import AppFunctions
from graphrun.state_json import state_json

__all__ = ("All", "Breakpoint", "Case", "Stop", "graph_of", "under_graphrun", "under_langgraph")


@dataclass(frozen=True)
class All:
    """Answer pending interrupts in one step, in the order of their values (the first n)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class Breakpoint:
    """Continue past an ``interrupt_before``/``interrupt_after`` stop."""


@dataclass(frozen=True, kw_only=True)
class Case:
    """One program run: a workflow of the fidelity app, its input and what answers it."""

    workflow: str
    input: Any = None
    answers: tuple[Any, ...] = ()
    config: dict[str, Any] | None = None
    context: Any = None
    #: Run on PostgreSQL too (what the serializer, store or recovery touch).
    storage: bool = False
    #: Restart the engine at every wait (state must come back from the database).
    restart: bool = False
    compile: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stop:
    """Where a program stopped: interrupts, a breakpoint, its output, or an error."""

    kind: str
    value: Any


def normalized(value: Any) -> Any:
    """The JSON view of ``value`` (graphrun's `state_json`), message ids left out."""
    return _without_message_ids(state_json(value))


def _without_message_ids(value: Any) -> Any:
    if isinstance(value, dict):
        is_message = "content" in value and "type" in value
        return {
            k: _without_message_ids(v) for k, v in value.items() if not (is_message and k == "id")
        }
    if isinstance(value, list):
        return [_without_message_ids(v) for v in value]
    return value


def _key(value: Any) -> str:
    return repr(normalized(value))


#: The app of LangGraph programs the suite runs.
APP = Path(__file__).parent.parent / "apps" / "fidelity"


def graph_of(workflow: str) -> Any:
    """What the fidelity app's manifest names for ``workflow`` (the module's own object)."""
    manifest = read_manifest(APP)
    entry = next(e for e in manifest.workflows if e.name == workflow)
    assert entry.graph is not None
    return AppFunctions(manifest).resolve(entry.graph)


def _bound(graph: Any, options: dict[str, Any]) -> Pregel[Any, Any, Any, Any]:
    saver, store = InMemorySaver(), InMemoryStore()
    if isinstance(graph, StateGraph):
        return graph.compile(checkpointer=saver, store=store, **options)
    if isinstance(graph, Pregel):
        return graph.copy(update={"checkpointer": saver, "store": store})
    built = graph({"configurable": {}}) if _takes_config(graph) else graph()
    return _bound(built, options)


def _takes_config(factory: Any) -> bool:
    import inspect

    return bool(inspect.signature(factory).parameters)


async def under_langgraph(graph: Any, case: Case) -> list[Stop]:
    """What raw LangGraph does with the case: one `Stop` per interrupt and the end."""
    if callable(graph) and not isinstance(graph, StateGraph | Pregel):
        config = {"configurable": dict((case.config or {}).get("configurable", {}))}
        built = graph(config) if _takes_config(graph) else graph()
        if asyncio.iscoroutine(built):
            built = await built
        graph = built
    compiled = _bound(graph, case.compile)
    config: Any = {**(case.config or {})}
    config["configurable"] = {**config.get("configurable", {}), "thread_id": "fidelity"}
    stops: list[Stop] = []
    answers = list(case.answers)
    command: Any = case.input
    while True:
        try:
            output = await compiled.ainvoke(command, config, context=case.context)
        except Exception as exc:
            stops.append(Stop("error", type(exc).__name__))
            return stops
        state = await compiled.aget_state(config)
        if state.interrupts:
            stops.append(Stop("interrupts", sorted(_key(i.value) for i in state.interrupts)))
        elif state.next:
            stops.append(Stop("breakpoint", sorted(state.next)))
        else:
            stops.append(Stop("output", normalized(output)))
            return stops
        if not answers:
            return stops
        answer = answers.pop(0)
        if isinstance(answer, Breakpoint):
            command = None
        elif isinstance(answer, All):
            ordered = sorted(state.interrupts, key=lambda i: _key(i.value))
            command = Command(
                resume={i.id: v for i, v in zip(ordered, answer.values, strict=False)}
            )
        else:
            command = Command(resume=answer)


async def under_graphrun(engine: Engine, case: Case, reopen: Any = None) -> list[Stop]:
    """What graphrun does with the case (``reopen()`` gives a fresh engine at each wait)."""
    try:
        run = await engine.start(
            f"fidelity.{case.workflow}", case.input, config=case.config, context=case.context
        )
    except ValidationFailed as exc:
        cause = exc.__cause__
        return [Stop("error", type(cause).__name__ if cause else "ValidationFailed")]
    stops: list[Stop] = []
    answers = list(case.answers)
    while True:
        run = await engine.wait(run.id, timeout=60)
        if run.status is RunStatus.FAILED:
            assert run.error is not None
            stops.append(Stop("error", run.error.type))
            return stops
        if run.status is RunStatus.COMPLETED:
            stops.append(Stop("output", normalized(run.output)))
            return stops
        assert run.status is RunStatus.WAITING, run
        breakpoints = [w for w in run.waiting_for if w.kind.value == "breakpoint"]
        if breakpoints:
            stops.append(Stop("breakpoint", sorted(breakpoints[0].prompt["nodes"])))
        else:
            stops.append(Stop("interrupts", sorted(_key(w.prompt) for w in run.waiting_for)))
        if not answers:
            return stops
        if reopen is not None:
            engine = await reopen()
        answer = answers.pop(0)
        if isinstance(answer, Breakpoint):
            run = await engine.resume(run.id)
        elif isinstance(answer, All):
            ordered = sorted(run.waiting_for, key=lambda w: _key(w.prompt))
            run = await engine.resume(
                run.id, answers={w.id: v for w, v in zip(ordered, answer.values, strict=False)}
            )
        else:
            run = await engine.resume(run.id, answer)
