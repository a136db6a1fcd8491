"""Plain LangGraph graphs: a bare `interrupt()` and a graph with a declared input model."""

from __future__ import annotations

from typing import Any, NotRequired

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class AskState(TypedDict):
    question: str
    answer: NotRequired[Any]


def ask_node(state: AskState) -> dict[str, Any]:
    return {"answer": interrupt({"please": state["question"]})}


ask = StateGraph(AskState)
ask.add_node("ask", ask_node)
ask.add_edge(START, "ask")
ask.add_edge("ask", END)


class TypedState(TypedDict):
    name: str
    count: int
    greeting: NotRequired[str]


def greet(state: TypedState) -> dict[str, Any]:
    return {"greeting": " ".join([f"hello {state['name']}"] * state["count"])}


typed = StateGraph(TypedState)
typed.add_node("greet", greet)
typed.add_edge(START, "greet")
typed.add_edge("greet", END)


class TwiceState(TypedDict):
    first: NotRequired[Any]
    second: NotRequired[Any]


def ask_twice(state: TwiceState) -> dict[str, Any]:
    first = interrupt("first?")
    second = interrupt("second?")
    return {"first": first, "second": second}


twice = StateGraph(TwiceState)
twice.add_node("ask", ask_twice)
twice.add_edge(START, "ask")
twice.add_edge("ask", END)
