"""Nodes asking for LangGraph's store: a ``store`` parameter, ``runtime.store``, get_store()."""

from __future__ import annotations

from typing import Any

from langgraph.config import get_store
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import interrupt
from typing_extensions import TypedDict


class Memo(TypedDict, total=False):
    user: str
    seen: list[str]


def remember(state: Memo, store: BaseStore) -> dict[str, Any]:
    store.put(("users", state["user"]), "visits", {"count": 1})
    store.put(("users", state["user"]), "mood", {"mood": "curious"})
    return {}


async def recall(state: Memo, runtime: Runtime[None]) -> dict[str, Any]:
    assert runtime.store is not None
    answer = interrupt({"asking": state["user"]})
    item = await runtime.store.aget(("users", state["user"]), "visits")
    found = await runtime.store.asearch(("users",), filter={"mood": "curious"})
    await runtime.store.aput(("users", state["user"]), "visits", {"count": item.value["count"] + 1})
    return {"seen": [f"{answer}:{item.value['count']}:{len(found)}"]}


def summarise(state: Memo) -> dict[str, Any]:
    store = get_store()
    item = store.get(("users", state["user"]), "visits")
    spaces = store.list_namespaces(prefix=("users",))
    return {"seen": [*state["seen"], f"visits={item.value['count']}", str(spaces)]}


memory = StateGraph(Memo)
memory.add_node("remember", remember)
memory.add_node("recall", recall)
memory.add_node("summarise", summarise)
memory.add_edge(START, "remember")
memory.add_edge("remember", "recall")
memory.add_edge("recall", "summarise")
