"""Order fulfilment: five steps, a branch, and a person's approval for large orders."""

from __future__ import annotations

import asyncio
from typing import Literal, NotRequired

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from graphrun import wait_for_input

APPROVAL_LIMIT = 100.0  # orders above this total need a person's approval


class Item(TypedDict):
    sku: str
    qty: int
    price: float


class OrderInput(TypedDict):
    order_id: str
    items: list[Item]


class OrderState(OrderInput):
    total: NotRequired[float]
    approved: NotRequired[bool]
    reviewer_note: NotRequired[str]
    reservation: NotRequired[str]
    tracking: NotRequired[str]
    status: NotRequired[str]


class OrderLine(BaseModel):
    """One line of an order, as a caller must send it."""

    sku: str
    qty: int
    price: float


class Order(BaseModel):
    """What `fulfil` accepts: stricter than the graph's TypedDict state, which LangGraph
    itself does not check (the manifest names this model as the workflow's ``input``)."""

    order_id: str
    items: list[OrderLine]


class Approval(BaseModel):
    """A reviewer's answer."""

    approved: bool
    note: str = Field(default="", max_length=500)


def validate(state: OrderState) -> dict[str, object]:
    """Sync step: reject empty or malformed orders early."""
    if not state["items"]:
        raise ValueError(f"order {state['order_id']} has no items")
    if any(item["qty"] <= 0 for item in state["items"]):
        raise ValueError("quantities must be positive")
    return {"status": "validated"}


async def price(state: OrderState) -> dict[str, object]:
    """Async step: total the order."""
    await asyncio.sleep(0)  # stands in for a pricing service call
    total = round(sum(item["qty"] * item["price"] for item in state["items"]), 2)
    return {"total": total, "status": "priced"}


def needs_approval(state: OrderState) -> Literal["approve", "reserve"]:
    """Large orders go to a person first."""
    return "approve" if state["total"] > APPROVAL_LIMIT else "reserve"


def approve(state: OrderState) -> dict[str, object]:
    """Wait for a reviewer; the engine validates the answer against `Approval`."""
    answer = wait_for_input(
        {"question": f"Approve order {state['order_id']} for {state['total']:.2f}?"},
        schema=Approval,
    )
    return {"approved": answer.approved, "reviewer_note": answer.note}


def after_approval(state: OrderState) -> Literal["reserve", "reject"]:
    return "reserve" if state.get("approved") else "reject"


def reserve(state: OrderState) -> dict[str, object]:
    """Sync step: reserve stock (idempotent on the order id)."""
    return {"reservation": f"res-{state['order_id']}", "status": "reserved"}


async def ship(state: OrderState) -> dict[str, object]:
    """Async step: hand over to the carrier."""
    await asyncio.sleep(0)
    return {"tracking": f"trk-{state['order_id']}", "status": "shipped"}


def reject(state: OrderState) -> dict[str, object]:
    return {"status": "rejected"}


fulfil = StateGraph(OrderState, input_schema=OrderInput)
fulfil.add_node("validate", validate)
fulfil.add_node("price", price)
fulfil.add_node("approve", approve)
fulfil.add_node("reserve", reserve)
fulfil.add_node("ship", ship)
fulfil.add_node("reject", reject)
fulfil.add_edge(START, "validate")
fulfil.add_edge("validate", "price")
fulfil.add_conditional_edges("price", needs_approval)
fulfil.add_conditional_edges("approve", after_approval)
fulfil.add_edge("reserve", "ship")
fulfil.add_edge("ship", END)
fulfil.add_edge("reject", END)
