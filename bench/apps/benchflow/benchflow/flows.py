"""The benchmark workloads: ten nodes in a line, each adding 1 (issue 2's `x + 1` graph);
the same with a pause in each node (runs that stay executing); one approval wait.
"""

from __future__ import annotations

import asyncio
from typing import Any, NotRequired

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from graphrun import sleep, wait_for_input, wait_for_signal

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


class SlowState(TypedDict):
    x: int
    pause: NotRequired[float]


async def add_one_slowly(state: SlowState) -> dict[str, Any]:
    await asyncio.sleep(state.get("pause", 0.1))
    return {"x": state["x"] + 1}


slow = StateGraph(SlowState)
for i in range(NODES):
    slow.add_node(f"s{i}", add_one_slowly)
    slow.add_edge(START if i == 0 else f"s{i - 1}", f"s{i}")
slow.add_edge(f"s{NODES - 1}", END)

approval = StateGraph(State)
approval.add_node("ask", ask)
approval.add_node("finish", add_one)
approval.add_edge(START, "ask")
approval.add_edge("ask", "finish")
approval.add_edge("finish", END)


class NapState(TypedDict):
    seconds: float
    woke: NotRequired[bool]


def nap(state: NapState) -> dict[str, Any]:
    sleep(state["seconds"])
    return {"woke": True}


#: One durable sleep (issue 4: sleeping runs cost no memory; wake-up lateness).
napper = StateGraph(NapState)
napper.add_node("nap", nap)
napper.add_edge(START, "nap")
napper.add_edge("nap", END)


async def forever(state: State) -> dict[str, Any]:
    await asyncio.Event().wait()
    return {}


#: An async node that never ends on its own (issue 4: cancel latency).
hang = StateGraph(State)
hang.add_node("forever", forever)
hang.add_edge(START, "forever")
hang.add_edge("forever", END)


def receive(state: State) -> dict[str, Any]:
    return {"x": state["x"] + wait_for_signal("go")}


#: One signal wait (issue 4: signal delivery latency).
signalled = StateGraph(State)
signalled.add_node("receive", receive)
signalled.add_edge(START, "receive")
signalled.add_edge("receive", END)
