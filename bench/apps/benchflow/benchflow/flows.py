"""The benchmark workload: ten nodes in a line, each adding 1 (issue 2's `x + 1` graph)."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from graphrun import wait_for_input

NODES = 10


class State(TypedDict):
    x: int


async def add_one(state: State) -> dict[str, Any]:
    return {"x": state["x"] + 1}


def build_linear() -> StateGraph[Any, Any, Any, Any]:
    """A fresh builder of the 10-node graph (the raw LangGraph baseline compiles its own)."""
    graph = StateGraph(State)
    previous = START
    for i in range(NODES):
        graph.add_node(f"n{i}", add_one)
        graph.add_edge(previous, f"n{i}")
        previous = f"n{i}"
    graph.add_edge(previous, END)
    return graph


def ask(state: State) -> dict[str, Any]:
    answer = wait_for_input("go?", schema={"type": "object"})
    return {"x": state["x"] + len(answer)}


linear = build_linear()

approval = StateGraph(State)
approval.add_node("ask", ask)
approval.add_node("finish", add_one)
approval.add_edge(START, "ask")
approval.add_edge("ask", "finish")
approval.add_edge("finish", END)
