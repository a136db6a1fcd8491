"""Checking a run's input as LangGraph itself would, before anything is stored.

Raw LangGraph is the reference: an input graphrun refuses must be one LangGraph would fail
on. The check therefore runs LangGraph's own input step on a copy of the graph that stops
before its first node (`GraphSource.dry_run`): the input is mapped to the channels, the
reducers apply (``add_messages`` coerces role dicts, tuples and strings), and the first
nodes' input schemas are built (a pydantic state validates there). Nothing the app's nodes
do runs, nothing is stored, and the input itself is kept as given: LangGraph, not graphrun,
coerces values when the run executes. Whatever the step raises becomes `ValidationFailed`
with JSON pointers, the one error a caller sees for a bad input (HTTP 422).
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from langgraph.errors import EmptyInputError
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from graphrun import errors, validation

from .graph_source import GraphSource

__all__ = ("check_context", "check_graph_input", "describe_input")

MAX_MESSAGE = 500  # characters of an exception's text kept in a problem


def _message(exc: BaseException) -> str:
    text = str(exc).split("\nFor troubleshooting")[0].strip() or type(exc).__name__
    return text[:MAX_MESSAGE]


def _pydantic_problems(
    exc: PydanticValidationError, prefix: tuple[Any, ...]
) -> list[dict[str, str]]:
    return [
        {"pointer": validation.pointer((*prefix, *e["loc"])), "message": e["msg"]}
        for e in exc.errors()
    ]


def _culprit(source: GraphSource, value: Any) -> str:
    """The pointer of the input key whose channel refuses its value, or the root."""
    builder = source.builder
    if builder is None or not isinstance(value, dict):
        return ""
    for key, item in value.items():
        channel = builder.channels.get(key)
        if channel is None:
            continue
        try:
            channel.copy().update([item])
        except Exception:
            return validation.pointer((key,))
    return ""


def check_context(source: GraphSource, context: Any) -> None:
    """Check ``context`` as LangGraph coerces it: a dict builds a model or dataclass schema.

    The context itself is kept as given: LangGraph builds the schema object at run time.

    Raises:
        ValidationFailed: Building the ``context_schema`` fails (pointers into the context).
    """
    schema = source.template.context_schema
    if not isinstance(context, dict) or not isinstance(schema, type):
        return
    if not (issubclass(schema, BaseModel) or dataclasses.is_dataclass(schema)):
        return
    try:
        schema(**context)
    except PydanticValidationError as exc:
        raise errors.ValidationFailed("context", _pydantic_problems(exc, ())) from exc
    except Exception as exc:  # a dataclass's missing or unknown argument, its __post_init__
        raise errors.ValidationFailed(
            "context", [{"pointer": "", "message": _message(exc)}]
        ) from exc


async def check_graph_input(
    source: GraphSource,
    value: Any,
    *,
    config: dict[str, Any] | None = None,
    context: Any = None,
) -> None:
    """Raise `ValidationFailed` unless LangGraph's input step accepts ``value``.

    Raises:
        ValidationFailed: LangGraph would fail on this input (its error, with a pointer).
    """
    graph = source.dry_run
    try:
        await graph.ainvoke(value, cast("Any", config or {}), context=context)
    except PydanticValidationError as exc:
        raise errors.ValidationFailed("input", _pydantic_problems(exc, ())) from exc
    except EmptyInputError as exc:
        raise errors.ValidationFailed("input", [{"pointer": "", "message": _message(exc)}]) from exc
    except Exception as exc:  # a reducer's, a schema's or LangGraph's own refusal
        pointer = _culprit(source, value)
        raise errors.ValidationFailed(
            "input", [{"pointer": pointer, "message": _message(exc)}]
        ) from exc


def describe_input(source: GraphSource) -> dict[str, Any]:
    """The JSON Schema that documents a graph's input (LangGraph's own where it can make one).

    It describes, it does not decide: LangGraph accepts any subset of the keys and leaves
    most values unchecked, so what a run accepts is what `check_graph_input` says.
    """
    try:
        schema: dict[str, Any] = source.template.get_input_jsonschema()
    except Exception:  # typing.TypedDict on Python 3.11, types pydantic cannot describe
        return _described_by_channels(source)
    return schema


def _described_by_channels(source: GraphSource) -> dict[str, Any]:
    builder = source.builder
    if builder is None:
        return {}
    properties: dict[str, Any] = {}
    for key in builder.schemas.get(builder.input_schema, {}):
        try:
            hint = builder.channels[key].UpdateType if key in builder.channels else Any
            properties[key] = TypeAdapter(hint).json_schema()
        except Exception:
            properties[key] = {}
    title = getattr(builder.input_schema, "__name__", "Input")
    return {"title": title, "type": "object", "properties": properties}
