"""Small shared value types; no logic."""

from __future__ import annotations

from typing import TypeAlias

__all__ = ("JSONValue", "RunId")

#: A run id: a UUID in its canonical text form; also the LangGraph thread id.
RunId: TypeAlias = str

#: A value that survives a JSON round trip unchanged.
JSONValue: TypeAlias = "dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None"
