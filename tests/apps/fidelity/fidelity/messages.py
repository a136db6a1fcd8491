"""`MessagesState` given messages in every form ``add_messages`` accepts."""

from __future__ import annotations

from langgraph.graph import START, MessagesState, StateGraph


class Chat(MessagesState):
    summary: str


def summarise(state: Chat) -> dict[str, object]:
    kinds = ",".join(m.type for m in state["messages"])
    return {"summary": f"{len(state['messages'])}:{kinds}", "messages": [("ai", "noted")]}


chat = StateGraph(Chat)
chat.add_node("summarise", summarise)
chat.add_edge(START, "summarise")
