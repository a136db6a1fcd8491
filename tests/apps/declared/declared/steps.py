"""The functions the expense workflow's python nodes name, shared by its code-first twin."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import RunnableConfig


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


#: Attempts per run: what the retry test counts (test app state, not graphrun's).
ATTEMPTS: dict[str, int] = {}


def wobbly(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
    """Fails the first two attempts of each run."""
    run_id = config["configurable"]["thread_id"]
    ATTEMPTS[run_id] = ATTEMPTS.get(run_id, 0) + 1
    if ATTEMPTS[run_id] < 3:
        raise ConnectionError(f"attempt {ATTEMPTS[run_id]} failed")
    return {"attempts": ATTEMPTS[run_id]}


async def maybe_slow(state: dict[str, Any]) -> dict[str, Any]:
    """Takes 30 s when asked to be slow."""
    if state["slow"]:
        await asyncio.sleep(30)
    return {}
