"""Graphs whose nodes block on events a test controls (same process only).

``blocking`` runs a *sync* node that blocks its thread until the test opens ``GATE`` (a
stand-in for a slow sync call such as ``time.sleep``), so tests can prove the event loop and
other runs go on meanwhile, and can act on a run while its node is in flight.
"""

from __future__ import annotations

import threading
from typing import NotRequired

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from graphrun import wait_for_input

#: Set by the blocking node when it starts; the test waits for it.
ENTERED = threading.Event()
#: Opened by the test to let the blocking node finish.
GATE = threading.Event()


class State(TypedDict):
    x: int
    answer: NotRequired[object]


def block(state: State) -> dict[str, int]:
    ENTERED.set()
    if not GATE.wait(timeout=60):
        raise TimeoutError("the test never opened the gate")
    return {"x": state["x"] + 1}


def add_one(state: State) -> dict[str, int]:
    return {"x": state["x"] + 1}


def ask(state: State) -> dict[str, object]:
    answer = wait_for_input("any answer?", schema={"type": "object", "required": ["ok"]})
    return {"answer": answer}


blocking = StateGraph(State)
blocking.add_node("before", add_one)
blocking.add_node("block", block)
blocking.add_node("after", add_one)
blocking.add_edge(START, "before")
blocking.add_edge("before", "block")
blocking.add_edge("block", "after")
blocking.add_edge("after", END)

quick = StateGraph(State)
for i in range(10):
    quick.add_node(f"q{i}", add_one)
    quick.add_edge(START if i == 0 else f"q{i - 1}", f"q{i}")
quick.add_node("ask", ask)
quick.add_conditional_edges("q9", lambda s: "ask" if s["x"] >= 100 else END)
quick.add_edge("ask", END)
