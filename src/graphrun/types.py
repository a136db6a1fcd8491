"""Small shared value types; no logic."""

from __future__ import annotations

from typing import TypeAlias

__all__ = ("INTERRUPT_MARKER", "JSONValue", "RunId")

#: A run id: a UUID in its canonical text form; also the LangGraph thread id.
RunId: TypeAlias = str

#: A value that survives a JSON round trip unchanged.
JSONValue: TypeAlias = "dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None"

#: Key marking a value as graphrun's own: the interrupts its authoring helpers raise, and the
#: resume values the engine hands back to them (a signal, a timer, a timeout).
INTERRUPT_MARKER = "__graphrun__"
