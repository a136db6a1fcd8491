"""Subgraphs: compiled graphs as nodes, sync nodes calling invoke(), Command.PARENT."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict


class Inner(TypedDict, total=False):
    value: int
    asked: str


def add_ten(state: Inner) -> dict[str, Any]:
    return {"value": state.get("value", 0) + 10}


def ask(state: Inner) -> dict[str, Any]:
    return {"asked": str(interrupt({"inner": state.get("value")}))}


_plain = StateGraph(Inner)
_plain.add_node("add_ten", add_ten)
_plain.add_edge(START, "add_ten")
plain_inner = _plain.compile()

_asking = StateGraph(Inner)
_asking.add_node("add_ten", add_ten)
_asking.add_node("ask", ask)
_asking.add_edge(START, "add_ten")
_asking.add_edge("add_ten", "ask")
asking_inner = _asking.compile()


class Outer(TypedDict, total=False):
    value: int
    asked: str
    log: Annotated[list[str], operator.add]


def call_plain(state: Outer) -> dict[str, Any]:
    """A sync node calling a subgraph's invoke(): from a thread, through sync saver calls."""
    result = plain_inner.invoke({"value": state.get("value", 0)})
    return {"value": result["value"], "log": ["called"]}


def call_asking(state: Outer) -> dict[str, Any]:
    result = asking_inner.invoke({"value": state.get("value", 0)})
    return {"value": result["value"], "asked": result["asked"], "log": ["asked"]}


sync_invoke = StateGraph(Outer)
sync_invoke.add_node("call", call_plain)
sync_invoke.add_edge(START, "call")

sync_invoke_interrupt = StateGraph(Outer)
sync_invoke_interrupt.add_node("call", call_asking)
sync_invoke_interrupt.add_edge(START, "call")

as_node = StateGraph(Outer)
as_node.add_node("inner", asking_inner)
as_node.add_edge(START, "inner")


def escalate(state: Inner) -> Command[Any]:
    return Command(graph=Command.PARENT, goto="handled", update={"value": -1})


_escalating = StateGraph(Inner)
_escalating.add_node("escalate", escalate)
_escalating.add_edge(START, "escalate")


def handled(state: Outer) -> dict[str, Any]:
    return {"log": [f"handled {state['value']}"]}


to_parent = StateGraph(Outer)
to_parent.add_node("inner", _escalating.compile(), destinations=("handled",))
to_parent.add_node("handled", handled)
to_parent.add_edge(START, "inner")


def writes_to_stream(state: Outer) -> dict[str, Any]:
    get_stream_writer()({"progress": 50})
    return {"log": ["streamed"]}


stream_writer = StateGraph(Outer)
stream_writer.add_node("write", writes_to_stream)
stream_writer.add_edge(START, "write")
