"""Interrupts as LangGraph docs use them: parallel branches, Send, several in one node."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt
from typing_extensions import TypedDict


class Review(TypedDict, total=False):
    items: list[str]
    answers: Annotated[list[str], operator.add]
    runs: Annotated[list[str], operator.add]


def ask_legal(state: Review) -> dict[str, Any]:
    answer = interrupt({"ask": "legal"})
    return {"answers": [f"legal:{answer}"], "runs": ["legal"]}


def ask_finance(state: Review) -> dict[str, Any]:
    answer = interrupt({"ask": "finance"})
    return {"answers": [f"finance:{answer}"], "runs": ["finance"]}


parallel = StateGraph(Review)
parallel.add_node("legal", ask_legal)
parallel.add_node("finance", ask_finance)
parallel.add_edge(START, "legal")
parallel.add_edge(START, "finance")


class One(TypedDict):
    item: str


def fan_out(state: Review) -> list[Send]:
    return [Send("check", {"item": item}) for item in state["items"]]


def check(state: One) -> dict[str, Any]:
    verdict = interrupt({"check": state["item"]})
    return {"answers": [f"{state['item']}={verdict}"]}


sends = StateGraph(Review)
sends.add_node("check", check)
sends.add_conditional_edges(START, fan_out, ["check"])


def questionnaire(state: Review) -> dict[str, Any]:
    name = interrupt({"q": "name"})
    age = interrupt({"q": "age"})
    return {"answers": [f"{name}/{age}"]}


several_in_one_node = StateGraph(Review)
several_in_one_node.add_node("ask", questionnaire)
several_in_one_node.add_edge(START, "ask")


def route(state: Review) -> Command[Any]:
    answer = interrupt({"route": "left or right?"})
    return Command(goto=answer, update={"runs": ["route"]})


def left(state: Review) -> dict[str, Any]:
    return {"runs": ["left"]}


def right(state: Review) -> dict[str, Any]:
    return {"runs": ["right"]}


command_goto = StateGraph(Review)
command_goto.add_node("route", route, destinations=("left", "right"))
command_goto.add_node("left", left)
command_goto.add_node("right", right)
command_goto.add_edge(START, "route")
command_goto.add_edge("left", END)
command_goto.add_edge("right", END)


def fails(state: Review) -> dict[str, Any]:
    raise ValueError("the node refused")


node_error = StateGraph(Review)
node_error.add_node("fails", fails)
node_error.add_edge(START, "fails")
