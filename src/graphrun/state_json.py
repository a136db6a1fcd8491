"""The JSON view of a run's state: what ``run.output`` and a checkpoint's state hold.

A run's state lives in its checkpoints with every type LangGraph's serializer keeps. Its
view as JSON (the run's output, the state at every step, over HTTP) must show any state a
graph can reach, however large, and store the same on SQLite and PostgreSQL. What JSON
cannot hold is written as a one-key object marking it:

- ``{"$bytes": "<base64>"}``: bytes (any, not only UTF-8);
- ``{"$float": "nan" | "inf" | "-inf"}``: the floats JSON has no number for;
- ``{"$str": "<base64 of UTF-8, surrogates passed>"}``: a string holding NUL or a lone
  surrogate, which PostgreSQL's JSON refuses.

Objects (pydantic models, dataclasses, messages, datetimes, UUIDs...) take their own JSON
form first. Size is not limited here: the limits guard request bodies, not state.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any

from pydantic_core import to_jsonable_python

__all__ = ("BYTES", "FLOAT", "STR", "from_state_json", "state_json")

BYTES, FLOAT, STR = "$bytes", "$float", "$str"
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def _text(value: str) -> Any:
    if _UNSTORABLE.search(value) is None:
        return value
    return {STR: base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()}


def _key(key: Any) -> str:
    """A key as text PostgreSQL stores: NUL and lone surrogates shown escaped."""
    text = key if isinstance(key, str) else str(key)
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _number(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {FLOAT: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def state_json(value: Any) -> Any:
    """``value`` as JSON every backend stores as it is (markers for what JSON cannot hold).

    Raises:
        RecursionError: The value nests deeper than Python's recursion limit.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {BYTES: base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {_key(k): state_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [state_json(v) for v in value]
    try:
        converted = to_jsonable_python(value, bytes_mode="base64", inf_nan_mode="strings")
    except Exception:
        return repr(value)
    return state_json(converted)


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def from_state_json(value: Any) -> Any:
    """The values `state_json` marked, back as they were (bytes, floats, strings)."""
    if isinstance(value, list):
        return [from_state_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((marker, encoded),) = value.items()
        if isinstance(encoded, str):
            if marker == BYTES:
                return base64.b64decode(encoded)
            if marker == FLOAT and encoded in _FLOATS:
                return _FLOATS[encoded]
            if marker == STR:
                return base64.b64decode(encoded).decode("utf-8", "surrogatepass")
    return {k: from_state_json(v) for k, v in value.items()}
