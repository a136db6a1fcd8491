"""Every shape a module may export: compiled graphs, entrypoints, factories."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class Steps(TypedDict, total=False):
    trail: list[str]
    answer: str


def first(state: Steps) -> dict[str, Any]:
    return {"trail": [*state.get("trail", []), "first"]}


def second(state: Steps) -> dict[str, Any]:
    return {"trail": [*state.get("trail", []), "second"]}


def _builder() -> StateGraph[Any, Any, Any, Any]:
    builder = StateGraph(Steps)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    return builder


builder = _builder()
compiled = _builder().compile()
#: A module that set its own checkpointer: graphrun replaces it (and says so).
compiled_with_saver = _builder().compile(checkpointer=InMemorySaver())
compiled_breakpoint = _builder().compile(interrupt_before=["second"], name="stops")


@task
def double(x: int) -> int:
    return x * 2


@entrypoint()
def functional(numbers: list[int]) -> dict[str, Any]:
    doubled = [f.result() for f in [double(n) for n in numbers]]
    answer = interrupt({"doubled": doubled})
    return {"doubled": doubled, "answer": answer}


@entrypoint()
def functional_plain(x: int) -> int:
    return double(x).result() + 1


def factory(config: dict[str, Any]) -> StateGraph[Any, Any, Any, Any]:
    """A graph built per run, as LangGraph's server calls factories."""
    extra = config.get("configurable", {}).get("extra")
    built = _builder()
    if extra:
        built.add_node("extra", lambda state: {"trail": [*state["trail"], str(extra)]})
        built.edges.discard(("second", END))
        built.add_edge("second", "extra")
    return built


async def async_factory() -> Any:
    return _builder().compile()
