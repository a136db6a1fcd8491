"""Per-run config and context: configurable values, recursion_limit, Runtime.context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    n: int
    seen: str


def read_config(state: State, config: RunnableConfig) -> dict[str, Any]:
    configurable = config.get("configurable", {})
    return {"seen": f"{configurable.get('user')}/{configurable.get('model', 'default')}"}


configurable = StateGraph(State)
configurable.add_node("read", read_config)
configurable.add_edge(START, "read")


def again(state: State) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1}


looping = StateGraph(State)
looping.add_node("again", again)
looping.add_edge(START, "again")
looping.add_conditional_edges("again", lambda s: "again" if s["n"] < 40 else "__end__")


@dataclass
class Who:
    user: str
    tier: str = "free"


def greet(state: State, runtime: Runtime[Who]) -> dict[str, Any]:
    return {"seen": f"{runtime.context.user}:{runtime.context.tier}"}


with_context = StateGraph(State, context_schema=Who)
with_context.add_node("greet", greet)
with_context.add_edge(START, "greet")


class Strict(BaseModel):
    user: str
    limit: int


def limited(state: State, runtime: Runtime[Strict]) -> dict[str, Any]:
    return {"seen": f"{runtime.context.user}<{runtime.context.limit}"}


model_context = StateGraph(State, context_schema=Strict)
model_context.add_node("limited", limited)
model_context.add_edge(START, "limited")


def greet_later(state: State, config: RunnableConfig, runtime: Runtime[Who]) -> dict[str, Any]:
    answer = interrupt("who is asking?")
    user = config.get("configurable", {}).get("user")
    return {"seen": f"{answer}:{runtime.context.user}:{user}"}


after_wait = StateGraph(State, context_schema=Who)
after_wait.add_node("greet", greet_later)
after_wait.add_edge(START, "greet")
