"""Checking a run's input as LangGraph itself would, before anything is stored.

Raw LangGraph is the reference: an input graphrun refuses must be one LangGraph would fail
on, and one it accepts must be accepted. For a ``StateGraph`` the check takes LangGraph's
input step as LangGraph's own code defines it: the input must be an object; its keys that
are input channels are applied to fresh copies of those channels (the reducers run:
``add_messages`` coerces role dicts, tuples and strings); and the first nodes reached by a
fixed edge from START build their input schema from the result (a pydantic or dataclass
state validates there; after a conditional entry, the state schema stands in). No node,
router or ``Send`` of the app runs, nothing is stored, and the input is kept as given:
LangGraph coerces values when the run executes. A functional-API entrypoint has no input
step of its own; LangGraph's (on a copy stopping before the entrypoint) is run as it is.
Whatever fails becomes `ValidationFailed` with JSON pointers (HTTP 422).
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from langgraph.errors import EmptyChannelError, InvalidUpdateError
from langgraph.graph import START
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
    builder = source.builder
    if builder is None:
        await _check_by_running(source, value, config, context)
        return
    if not isinstance(value, dict):
        refused = InvalidUpdateError(f"Expected dict, got {type(value).__name__}")
        raise errors.ValidationFailed("input", [{"pointer": "", "message": str(refused)}]) from (
            refused
        )
    state = _channels_after(builder, value)
    for schema in _first_schemas(builder):
        _build(schema, {k: v for k, v in state.items() if k in builder.schemas.get(schema, {})})


def _channels_after(builder: Any, value: dict[str, Any]) -> dict[str, Any]:
    """The channel values LangGraph's input step leaves: each input key through its reducer."""
    keys = builder.schemas.get(builder.input_schema, {})
    state: dict[str, Any] = {}
    for key, item in value.items():
        if key not in keys or key not in builder.channels:
            continue  # LangGraph ignores keys that are not input channels (managed values too)
        channel = builder.channels[key].copy()
        try:
            channel.update([item])
            state[key] = channel.get()
        except EmptyChannelError:
            continue
        except Exception as exc:  # a reducer's or a channel's own refusal
            raise errors.ValidationFailed(
                "input", [{"pointer": validation.pointer((key,)), "message": _message(exc)}]
            ) from exc
    return state


def _first_schemas(builder: Any) -> list[Any]:
    """The input schemas LangGraph builds first: those of the nodes START leads to."""
    nodes = {end for start, end in builder.edges if start == START}
    nodes |= {end for starts, end in builder.waiting_edges if START in starts}
    schemas = [builder.nodes[n].input_schema for n in sorted(nodes) if n in builder.nodes]
    if START in builder.branches:  # a conditional entry: the state schema stands in
        schemas.append(builder.state_schema)
    return [s for s in schemas if isinstance(s, type) and _built_from_fields(s)]


def _built_from_fields(schema: type) -> bool:
    return issubclass(schema, BaseModel) or dataclasses.is_dataclass(schema)


def _build(schema: Any, values: dict[str, Any]) -> None:
    """Build a node's input schema as LangGraph does (``schema(**state)``)."""
    try:
        schema(**values)
    except PydanticValidationError as exc:
        raise errors.ValidationFailed("input", _pydantic_problems(exc, ())) from exc
    except Exception as exc:  # a dataclass's missing field, a validator's own error
        raise errors.ValidationFailed("input", [{"pointer": "", "message": _message(exc)}]) from exc


async def _check_by_running(
    source: GraphSource, value: Any, config: dict[str, Any] | None, context: Any
) -> None:
    try:
        await source.dry_run.ainvoke(value, cast("Any", config or {}), context=context)
    except PydanticValidationError as exc:
        raise errors.ValidationFailed("input", _pydantic_problems(exc, ())) from exc
    except Exception as exc:  # EmptyInputError, or LangGraph's own refusal
        raise errors.ValidationFailed("input", [{"pointer": "", "message": _message(exc)}]) from exc


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
