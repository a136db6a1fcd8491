"""The checkpoint allow-list is built from public APIs and equals the one LangGraph builds."""

from __future__ import annotations

import dataclasses
import enum
import sys
from typing import Annotated, Any, NewType, NotRequired, Optional

from langgraph._internal import _serde as langgraph_serde  # the reference, in tests only
from langgraph.graph import MessagesState, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

from graphrun.apps.loader import load_app
from graphrun.engine.allowlist import (
    allowlist_for_graph,
    allowlist_for_modules,
    allowlist_for_types,
)
from tests.conftest import APPS, EXAMPLES


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Line:
    sku: str
    colour: Colour


class Address(BaseModel):
    city: str


class Order(BaseModel):
    address: Address | None
    lines: list[Line]
    tags: dict[str, set[Colour]]


class Nested(TypedDict):
    order: NotRequired[Order]


OrderId = NewType("OrderId", str)


class State(TypedDict):
    nested: Annotated[Nested, "meta"]
    maybe: Optional[Address]  # noqa: UP045 - typing.Optional is a form to walk too
    id: OrderId
    anything: Any


def _reference(schemas: list[Any], channels: dict[str, Any] | None = None) -> set[Any]:
    return langgraph_serde.build_serde_allowlist(schemas=schemas, channels=channels)


def test_allowlist_for_types_walks_every_typing_form() -> None:
    found = allowlist_for_types([State])
    assert found == _reference([State])
    assert {(__name__, n) for n in ("Colour", "Line", "Address", "Order")} <= found


def _builders() -> list[StateGraph[Any, Any, Any, Any]]:
    builders: list[StateGraph[Any, Any, Any, Any]] = []
    for folder in [*sorted(p for p in APPS.iterdir() if p.name != "broken"), EXAMPLES / "orders"]:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        builders += [wf.graph.builder for wf in load_app(folder).workflows if wf.graph.builder]
    builder = StateGraph(MessagesState)
    builder.add_node("n", lambda state: state)
    return [*builders, builder]


def test_allowlist_for_graph_equals_langgraphs_for_every_test_app() -> None:
    builders = _builders()
    assert len(builders) > 10
    for builder in builders:
        schemas = [builder.state_schema, builder.input_schema, builder.output_schema]
        schemas += [node.input_schema for node in builder.nodes.values()]
        assert allowlist_for_graph(builder) == _reference(schemas, builder.channels)


def test_an_apps_own_modules_allow_their_data_classes_and_nothing_they_import() -> None:
    (app,) = [load_app(APPS / "fidelity")]
    allowed = allowlist_for_modules(app.modules)
    assert ("fidelity.values", "Invoice") in allowed  # a pydantic model the app defines
    assert ("fidelity.values", "Parcel") in allowed  # a dataclass
    assert not any(module.startswith(("pydantic", "langgraph", "typing")) for module, *_ in allowed)
    assert all(module.startswith("fidelity") for module, *_ in allowed)
