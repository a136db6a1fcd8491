"""A graph whose middle node fails until a marker file exists; counts executions per node."""

from __future__ import annotations

import os
from typing import NotRequired

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    marker: str
    log: str
    steps: NotRequired[list[str]]


def _log(state: State, name: str) -> None:
    with open(state["log"], "a", encoding="utf-8") as f:
        f.write(name + "\n")


def first(state: State) -> dict[str, object]:
    _log(state, "first")
    return {"steps": ["first"]}


def middle(state: State) -> dict[str, object]:
    _log(state, "middle")
    if not os.path.exists(state["marker"]):
        raise RuntimeError("marker missing")
    return {"steps": [*state.get("steps", []), "middle"]}


async def last(state: State) -> dict[str, object]:
    _log(state, "last")
    return {"steps": [*state.get("steps", []), "last"]}


once = StateGraph(State)
once.add_node("first", first)
once.add_node("middle", middle)
once.add_node("last", last)
once.add_edge(START, "first")
once.add_edge("first", "middle")
once.add_edge("middle", "last")
once.add_edge("last", END)
