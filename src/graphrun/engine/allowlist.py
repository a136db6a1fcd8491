"""The types a workflow's checkpoints may load: its state schemas' own classes, nothing else.

graphrun's checkpointer refuses to rebuild any class from a checkpoint blob that is not on its
msgpack allow-list (a crafted blob must never name an arbitrary class). LangGraph's public
hook for this is `BaseCheckpointSaver.with_allowlist`; the list itself is ours to build, from
the types a graph declares: its state, input and output schemas, each node's input schema
and each channel's value and update types, walked through unions, containers, ``Annotated``,
TypedDicts, pydantic models, dataclasses and enums. LangChain's message classes are always
allowed, since `MessagesState` holds them.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections import deque
from collections.abc import Iterable
from enum import Enum
from typing import Annotated, Any, Literal, NotRequired, Required, Union, get_args, get_origin

from langchain_core import messages as lc_messages
from pydantic import BaseModel
from typing_extensions import get_type_hints, is_typeddict

__all__ = (
    "MESSAGE_CLASSES",
    "Allowlist",
    "allowlist_for_graph",
    "allowlist_for_modules",
    "allowlist_for_types",
)

#: ``(module, class name)`` pairs a checkpoint may rebuild.
Allowlist = set[tuple[str, ...]]

#: LangChain's message classes, allowed in every workflow's checkpoints.
MESSAGE_CLASSES = (
    "BaseMessage",
    "BaseMessageChunk",
    "HumanMessage",
    "HumanMessageChunk",
    "AIMessage",
    "AIMessageChunk",
    "SystemMessage",
    "SystemMessageChunk",
    "ChatMessage",
    "ChatMessageChunk",
    "ToolMessage",
    "ToolMessageChunk",
    "FunctionMessage",
    "FunctionMessageChunk",
    "RemoveMessage",
)
_CONTAINERS = (list, set, tuple, dict, deque, frozenset)


def allowlist_for_graph(builder: Any) -> Allowlist:
    """The allow-list for a LangGraph ``StateGraph`` builder's checkpoints (None: messages)."""
    if builder is None:  # a functional-API entrypoint declares no state types
        return allowlist_for_types(())
    schemas: list[Any] = [builder.state_schema, builder.input_schema, builder.output_schema]
    schemas += [node.input_schema for node in builder.nodes.values()]
    for channel in builder.channels.values():
        schemas += [getattr(channel, "ValueType", None), getattr(channel, "UpdateType", None)]
    return allowlist_for_types(schemas)


def allowlist_for_modules(names: Iterable[str]) -> Allowlist:
    """The data classes the app's own modules define: pydantic models, dataclasses, enums.

    A value of one of them in an untyped field (``Any``, ``dict``) comes back with its type
    after a wait, as under LangGraph; a class from any other module still never loads.
    """
    allowed: Allowlist = set()
    for name in names:
        module = sys.modules.get(name)
        for value in list(vars(module).values()) if module is not None else ():
            if not isinstance(value, type) or value.__module__ != name:
                continue
            if (
                _is_pydantic_model(value)
                or dataclasses.is_dataclass(value)
                or issubclass(value, Enum)
            ):
                allowed.add((name, value.__name__))
    return allowed


def allowlist_for_types(schemas: Iterable[Any]) -> Allowlist:
    """The message classes plus every class reachable from ``schemas``' annotations."""
    allowed: Allowlist = set()
    for name in MESSAGE_CLASSES:
        cls = getattr(lc_messages, name, None)
        if cls is not None:
            allowed.add((cls.__module__, cls.__name__))
    walker = _Walker(allowed)
    for schema in schemas:
        if schema is not None:
            walker.visit(schema)
    return allowed


@dataclasses.dataclass
class _Walker:
    allowed: Allowlist
    seen: set[Any] = dataclasses.field(default_factory=set)
    seen_ids: set[int] = dataclasses.field(default_factory=set)

    def visit(self, typ: Any) -> None:
        if self._seen(typ) or typ is Any or typ is None or typ is Literal:
            return
        origin = get_origin(typ)
        if isinstance(typ, types.UnionType) or origin is Union or origin in _CONTAINERS:
            for arg in get_args(typ):
                self.visit(arg)
        elif origin in (Annotated, Required, NotRequired):
            args = get_args(typ)
            if args:
                self.visit(args[0])
        elif origin is None:
            self._visit_class(typ)

    def _visit_class(self, typ: Any) -> None:
        if hasattr(typ, "__supertype__"):  # typing.NewType
            self.visit(typ.__supertype__)
        elif is_typeddict(typ):
            for field_type in _hints(typ).values():
                self.visit(field_type)
        elif _is_pydantic_model(typ) or dataclasses.is_dataclass(typ):
            name = getattr(typ, "__name__", None)
            if name:
                self.allowed.add((typ.__module__, name))
            for field_type in _hints(typ).values() or _declared_field_types(typ):
                self.visit(field_type)
        elif isinstance(typ, type) and issubclass(typ, Enum):
            self.allowed.add((typ.__module__, typ.__name__))

    def _seen(self, typ: Any) -> bool:
        try:
            if typ in self.seen:
                return True
            self.seen.add(typ)
        except TypeError:  # unhashable (some generic aliases)
            if id(typ) in self.seen_ids:
                return True
            self.seen_ids.add(id(typ))
        return False


def _hints(typ: Any) -> dict[str, Any]:
    """A class's resolved annotations; none when they do not resolve (forward references)."""
    try:
        module = sys.modules.get(getattr(typ, "__module__", ""))
        localns = dict(vars(typ)) if hasattr(typ, "__dict__") else None
        return get_type_hints(
            typ, globalns=module.__dict__ if module else None, localns=localns, include_extras=True
        )
    except Exception:
        return {}


def _is_pydantic_model(typ: Any) -> bool:
    if not isinstance(typ, type):
        return False
    if issubclass(typ, BaseModel):
        return True
    from pydantic.v1 import BaseModel as BaseModelV1  # models written for pydantic 1

    return issubclass(typ, BaseModelV1)


def _declared_field_types(typ: Any) -> list[Any]:
    """Field types as declared, where annotations do not resolve."""
    if dataclasses.is_dataclass(typ):
        return [f.type for f in dataclasses.fields(typ)]
    if hasattr(typ, "model_fields"):
        return [f.annotation for f in typ.model_fields.values() if f.annotation is not None]
    return [f.outer_type_ for f in getattr(typ, "__fields__", {}).values()]
