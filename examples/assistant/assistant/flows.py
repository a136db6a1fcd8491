"""LangGraph's everyday idioms, as the README shows them; graphrun runs them unchanged."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import create_react_agent
from langgraph.runtime import Runtime

from .model import ScriptedModel


class Ticket(typing.TypedDict):  # typing's own TypedDict works on Python 3.11 too
    title: str
    priority: int


def triage(state: Ticket) -> dict[str, Any]:
    return {"priority": 1 if "outage" in state["title"] else 3}


tickets = StateGraph(Ticket)
tickets.add_node("triage", triage)
tickets.add_edge(START, "triage")


@dataclass
class Caller:  # what a run is given as `context=`, read as runtime.context
    user: str


class Chat(MessagesState):
    turns: int


def reply(state: Chat, runtime: Runtime[Caller]) -> dict[str, Any]:
    said = state["messages"][-1].content
    return {"messages": [("ai", f"{runtime.context.user}, you said: {said}")], "turns": 1}


chat = StateGraph(Chat, context_schema=Caller)
chat.add_node("reply", reply)
chat.add_edge(START, "reply")


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


agent = create_react_agent(ScriptedModel(), [weather])
