"""The expense workflow of workflows/expense.yaml, written as a LangGraph graph by hand."""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from graphrun import sleep, timeout, wait_for_input, wait_for_signal

from . import steps


def append(current: list[str] | None, update: list[str]) -> list[str]:
    return [*(current or []), *update]


class ExpenseInput(BaseModel):
    employee: str
    amount: float = Field(ge=0)
    items: list[str] | None = None


class Expense(TypedDict):
    employee: str
    amount: float
    items: NotRequired[list[str]]
    log: Annotated[list[str], append]
    total: NotRequired[float]
    approval: NotRequired[dict[str, Any]]
    receipt: NotRequired[dict[str, Any]]


def approve(state: Expense) -> dict[str, Any]:
    prompt = f"Approve {state['amount']} for {state['employee']}?"
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    return {"approval": wait_for_input(prompt, schema)}


def cool_off(state: Expense) -> dict[str, Any]:
    sleep(0 if state["total"] < 500 else 0.01)
    return {}


def payment(state: Expense) -> dict[str, Any]:
    return {"receipt": wait_for_signal("paid")}


expense = StateGraph(Expense)
expense.add_node("check", timeout(30)(steps.check), retry_policy=RetryPolicy(max_attempts=3))
expense.add_node("approve", approve)
expense.add_node("rejected", steps.rejected)
expense.add_node("cool_off", cool_off)
expense.add_node("payment", payment)
expense.add_node("book", steps.book)
expense.add_edge(START, "check")
expense.add_conditional_edges(
    "check", lambda s: "approve" if s["total"] > 100 else "cool_off", ["approve", "cool_off"]
)
expense.add_conditional_edges("approve", steps.after_approval, ["cool_off", "rejected"])
expense.add_edge("cool_off", "payment")
expense.add_edge("payment", "book")
expense.add_edge("book", END)
expense.add_edge("rejected", END)
