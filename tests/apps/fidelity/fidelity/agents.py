"""A prebuilt agent exported compiled, with a scripted chat model (no network, no model)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent
from langgraph.types import interrupt


class ScriptedModel(BaseChatModel):
    """Calls the tool named in the last human message once, then answers with its result."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(content=f"the tool said: {last.content}")
        else:
            name = "approve" if "approve" in str(last.content) else "weather"
            call = {"name": name, "args": {"city": "Riga"}, "id": "call-1", "type": "tool_call"}
            reply = AIMessage(content="", tool_calls=[call])
        return ChatResult(generations=[ChatGeneration(message=reply)])


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@tool
def approve(city: str) -> str:
    """Ask a person to approve a trip (an interrupt inside a tool)."""
    return f"trip to {city}: {interrupt({'approve trip to': city})}"


agent = create_react_agent(ScriptedModel(), [weather, approve])
