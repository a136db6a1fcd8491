"""State values: the app's own types in untyped fields, large states, bytes, typed values."""

from __future__ import annotations

import datetime
import decimal
import uuid
from dataclasses import dataclass
from typing import Any

from langgraph.graph import START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel
from typing_extensions import TypedDict


class Invoice(BaseModel):
    number: str
    total: float


@dataclass
class Parcel:
    weight: float


class Loose(TypedDict, total=False):
    blob: Any
    things: dict[str, Any]
    seen: str


def make(state: Loose) -> dict[str, Any]:
    return {"blob": Invoice(number="I-1", total=9.5), "things": {"parcel": Parcel(weight=2.5)}}


def after_wait(state: Loose) -> dict[str, Any]:
    answer = interrupt({"ok?": True})
    kinds = f"{type(state['blob']).__name__},{type(state['things']['parcel']).__name__}"
    return {"seen": f"{kinds}:{answer}"}


app_types = StateGraph(Loose)
app_types.add_node("make", make)
app_types.add_node("after_wait", after_wait)
app_types.add_edge(START, "make")
app_types.add_edge("make", "after_wait")


class Big(TypedDict, total=False):
    numbers: list[int]
    text: str
    raw: bytes
    odd: float


def grow(state: Big) -> dict[str, Any]:
    return {
        "numbers": list(range(50_000)),
        "text": "x" * 1_500_000,
        "raw": bytes(range(256)),
        "odd": float("nan"),
    }


large_state = StateGraph(Big)
large_state.add_node("grow", grow)
large_state.add_edge(START, "grow")


class Typed(BaseModel):
    when: datetime.datetime | None = None
    key: uuid.UUID | None = None
    price: decimal.Decimal | None = None
    tags: set[str] = set()
    seen: str = ""


def stamp(state: Typed) -> dict[str, Any]:
    return {
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "key": uuid.UUID(int=7),
        "price": decimal.Decimal("1.10"),
        "tags": {"a"},
    }


def check_types(state: Typed) -> dict[str, Any]:
    interrupt("continue?")
    parts = [type(v).__name__ for v in (state.when, state.key, state.price, state.tags)]
    return {"seen": ",".join(parts)}


typed_values = StateGraph(Typed)
typed_values.add_node("stamp", stamp)
typed_values.add_node("check", check_types)
typed_values.add_edge(START, "stamp")
typed_values.add_edge("stamp", "check")
