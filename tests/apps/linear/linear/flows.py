"""Ten nodes in a line, each adding 1 to x; used by crash tests and the benchmark.

When the input names an ``effects`` file, each node appends ``start <i>`` before its work
and ``done <i>`` after it (the side effects a crash test counts), and sleeps ``delay``
seconds in between so that a test can kill the process in the middle of a node.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NotRequired

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict
from typing_extensions import TypedDict

NODES = 10


class TenInput(BaseModel):
    """What a start must give: an integer ``x`` (other keys pass as they are)."""

    model_config = ConfigDict(extra="allow")
    x: int


class State(TypedDict):
    x: int
    effects: NotRequired[str]
    delay: NotRequired[float]


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def make_node(i: int) -> Callable[[State], dict[str, int]]:
    def node(state: State) -> dict[str, int]:
        effects = state.get("effects")
        if effects:
            _append(effects, f"start {i}")
            time.sleep(state.get("delay", 0.0))
            _append(effects, f"done {i}")
        return {"x": state["x"] + 1}

    node.__name__ = f"n{i}"
    return node


ten = StateGraph(State)
previous = START
for i in range(NODES):
    ten.add_node(f"n{i}", make_node(i))
    ten.add_edge(previous, f"n{i}")
    previous = f"n{i}"
ten.add_edge(previous, END)
