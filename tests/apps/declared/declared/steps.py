"""The functions the expense workflow's python nodes name, shared by its code-first twin."""

from __future__ import annotations

import asyncio
from typing import Any


def check(state: dict[str, Any]) -> dict[str, Any]:
    """Sync: adds the items up (the amount when there are none)."""
    total = state["amount"] + 10 * len(state.get("items") or [])
    return {"total": total, "log": [f"checked {total}"]}


async def rejected(state: dict[str, Any]) -> dict[str, Any]:
    """Async: records the refusal."""
    await asyncio.sleep(0)
    return {"log": ["rejected"]}


def after_approval(state: dict[str, Any]) -> str:
    """Routes on the person's answer."""
    return "cool_off" if state["approval"]["ok"] else "rejected"


async def book(state: dict[str, Any]) -> dict[str, Any]:
    """Async: books the payment."""
    return {"log": [f"paid {state['total']} ref {state['receipt']['ref']}"]}


def double(state: dict[str, Any]) -> dict[str, Any]:
    """The child workflow's step."""
    if state["n"] < 0:
        raise ValueError(f"cannot double {state['n']}")
    return {"doubled": 2 * state["n"]}


def finish(state: dict[str, Any]) -> dict[str, Any]:
    """The parent's step after its child ended."""
    return {"total": state["result"]["doubled"] + 1}
