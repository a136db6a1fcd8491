"""What `invoke` returns: the output schema's keys, private channels left out."""

from __future__ import annotations

from typing import Any

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    question: str
    answer: str
    scratch: str


class Output(TypedDict):
    answer: str


class Private(TypedDict):
    secret: str


def think(state: State) -> Private:
    return {"secret": f"thought about {state['question']}"}


def reply(state: Private) -> dict[str, Any]:
    return {"answer": state["secret"].upper(), "scratch": "x"}


with_output = StateGraph(State, output_schema=Output)
with_output.add_node("think", think)
with_output.add_node("reply", reply)
with_output.add_edge(START, "think")
with_output.add_edge("think", "reply")

with_private = StateGraph(State)
with_private.add_node("think", think)
with_private.add_node("reply", reply)
with_private.add_edge(START, "think")
with_private.add_edge("think", "reply")
