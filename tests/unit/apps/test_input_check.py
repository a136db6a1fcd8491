"""The start-time input check runs LangGraph's input step, and none of the app's code."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.graph import START, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

from graphrun import ValidationFailed
from graphrun.apps.graph_source import CompileOptions, graph_source
from graphrun.apps.input_check import check_graph_input


class Model(BaseModel):
    x: float
    note: str = ""


class Loose(TypedDict, total=False):
    x: Any


def _routed(state_schema: Any, calls: list[str]) -> Any:
    def route(state: Any) -> str:
        calls.append("route")  # a router's side effect must not happen at start
        return "n"

    builder = StateGraph(state_schema)
    builder.add_node("n", lambda state: {})
    builder.add_conditional_edges(START, route, ["n"])
    return graph_source(builder, CompileOptions(), app="t", where="t:g")


async def test_a_conditional_entry_is_not_run_and_the_state_schema_stands_in() -> None:
    calls: list[str] = []
    source = _routed(Model, calls)
    await check_graph_input(source, {"x": 1})
    with pytest.raises(ValidationFailed) as info:
        await check_graph_input(source, {"x": "abc"})
    assert info.value.errors[0]["pointer"] == "/x"
    assert calls == []


async def test_a_typed_dict_state_takes_any_value_and_keys_outside_it() -> None:
    source = _routed(Loose, [])
    await check_graph_input(source, {"x": object, "unknown": 1})
    with pytest.raises(ValidationFailed, match="Expected dict"):
        await check_graph_input(source, ["x"])
