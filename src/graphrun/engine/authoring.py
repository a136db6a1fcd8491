"""Helpers a workflow's nodes call: thin wrappers over LangGraph's `interrupt()`.

A plain ``interrupt(value)`` works too: graphrun shows it as an ``input`` wait whose prompt
is ``value``. These helpers add what a durable engine needs on top: a schema the engine
checks *before* it accepts a resume, so an invalid answer leaves the run waiting.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from langgraph.types import interrupt
from pydantic import BaseModel

from graphrun import validation

__all__ = ("INTERRUPT_MARKER", "wait_for_input")

#: Key marking an interrupt value as made by these helpers.
INTERRUPT_MARKER = "__graphrun__"

ModelT = TypeVar("ModelT", bound=BaseModel)


@overload
def wait_for_input(prompt: Any, schema: type[ModelT]) -> ModelT: ...
@overload
def wait_for_input(prompt: Any, schema: dict[str, Any] | None = None) -> Any: ...
def wait_for_input(prompt: Any, schema: type[BaseModel] | dict[str, Any] | None = None) -> Any:
    """Pause the run until a person answers; return the answer.

    The run becomes ``waiting`` with this prompt and schema in ``waiting_for``; the engine
    validates a resume value against the schema before accepting it. On resume the node runs
    again from its start and this call returns the value (LangGraph interrupt semantics:
    code before the call re-executes, so keep side effects after it or idempotent).

    Args:
        prompt: What to show the person (any JSON value).
        schema: A pydantic model (the answer is returned as an instance of it), a JSON
            Schema dict, or None to accept any JSON value.

    Returns:
        The validated answer.
    """
    model = schema if isinstance(schema, type) and issubclass(schema, BaseModel) else None
    json_schema = model.model_json_schema() if model is not None else schema
    value = interrupt(
        {INTERRUPT_MARKER: "input", "prompt": prompt, "schema": json_schema},
    )
    if model is not None:
        return model.model_validate(value)
    validation.validate_with_schema(value, json_schema, what="resume value")  # type: ignore[arg-type]
    return value
