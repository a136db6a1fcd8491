"""Inputs as LangGraph takes them: typing.TypedDict, partial input, values left as given."""

from __future__ import annotations

import operator
import typing
from dataclasses import dataclass
from typing import Annotated

from langgraph.graph import START, StateGraph
from langgraph.managed import RemainingSteps
from pydantic import BaseModel


class Plain(typing.TypedDict):  # typing's, not typing_extensions': refused by pydantic on 3.11
    x: float
    label: str
    seen: Annotated[list[str], operator.add]


def describe(state: Plain) -> dict[str, object]:
    return {
        "label": f"{type(state.get('x')).__name__}:{state.get('x')}",
        "seen": ["describe"],
    }


typed_dict = StateGraph(Plain)
typed_dict.add_node("describe", describe)
typed_dict.add_edge(START, "describe")


class Model(BaseModel):
    x: float
    note: str = ""


def read_model(state: Model) -> dict[str, object]:
    return {"note": f"{type(state.x).__name__}:{state.x}"}


pydantic_state = StateGraph(Model)
pydantic_state.add_node("read", read_model)
pydantic_state.add_edge(START, "read")


@dataclass
class Record:
    x: float
    note: str = ""


def read_record(state: Record) -> dict[str, object]:
    return {"note": f"{type(state.x).__name__}:{state.x}"}


dataclass_state = StateGraph(Record)
dataclass_state.add_node("read", read_record)
dataclass_state.add_edge(START, "read")


class Counted(typing.TypedDict):
    n: int
    remaining: RemainingSteps


def count(state: Counted) -> dict[str, object]:
    return {"n": state.get("n", 0) + 1}


remaining_steps = StateGraph(Counted)
remaining_steps.add_node("count", count)
remaining_steps.add_edge(START, "count")
