"""The steps the declarative returns workflow (workflows/returns.yaml) names."""

from __future__ import annotations

import asyncio
from typing import Any


def inspect(state: dict[str, Any]) -> dict[str, Any]:
    """Sync step: note what came back."""
    parcel = state.get("parcel")
    seen = "nothing came back" if parcel is None else f"parcel {parcel['condition']}"
    return {"history": [seen]}


def after_review(state: dict[str, Any]) -> str:
    """Route: refund what the reviewer approved, close the rest."""
    return "refund" if state["review"]["approved"] else "close"


async def refund(state: dict[str, Any]) -> dict[str, Any]:
    """Async step: stands in for a payment provider's refund call (idempotent by order)."""
    await asyncio.sleep(0)
    return {"history": [f"refunded {state['amount']:.2f} for {state['order_id']}"]}


def close(state: dict[str, Any]) -> dict[str, Any]:
    """Sync step: the return's outcome."""
    refunded = any(line.startswith("refunded") for line in state.get("history", []))
    return {"history": ["closed with refund" if refunded else "closed without refund"]}
