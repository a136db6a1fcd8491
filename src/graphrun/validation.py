"""Validation of values that cross into graphrun: JSON hygiene and schemas.

Every input, resume value and (later) signal payload passes `check_json` before anything is
stored, so SQLite and PostgreSQL hold identical state: NaN and Infinity, NUL characters and
lone surrogates are refused here (docs/RELIABILITY.md bad-input rows 5-7, 11) instead of being
silently changed by msgpack or rejected later by PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from typing import Any

import jsonschema
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from graphrun import errors

__all__ = (
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_STRING",
    "canonical_hash",
    "check_json",
    "pointer",
    "validate_with_adapter",
    "validate_with_schema",
)

MAX_DEPTH = 64  # nesting levels
MAX_ITEMS = 10_000  # entries per array or object
MAX_STRING = 1_000_000  # characters per string
MIN_INT, MAX_INT = -(2**63), 2**63 - 1  # what checkpoints (msgpack) and PostgreSQL store


#: Characters a pointer cannot carry as they are: lone surrogates (not UTF-8) and NUL.
_UNSENDABLE = re.compile("[\ud800-\udfff\x00]")


def pointer(path: Sequence[Any]) -> str:
    """The JSON pointer of ``path``: ``("a", 0)`` -> ``/a/0``.

    The pointer is itself valid text: lone surrogates and NULs in keys are shown escaped.
    """
    return "".join("/" + _printable(str(p)).replace("~", "~0").replace("/", "~1") for p in path)


def _printable(text: str) -> str:
    return _UNSENDABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    if len(text) > MAX_STRING:
        return f"is longer than {MAX_STRING} characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def _problem(path: tuple[Any, ...], message: str) -> dict[str, str]:
    return {"pointer": pointer(path), "message": message}


def _children(
    item: Any, path: tuple[Any, ...], problems: list[dict[str, str]]
) -> list[tuple[Any, tuple[Any, ...]]]:
    """Check one value; return the children still to check."""
    if len(path) > MAX_DEPTH:
        problems.append(_problem(path, f"nested deeper than {MAX_DEPTH}"))
    elif item is None or isinstance(item, bool):
        pass
    elif isinstance(item, int):
        if not MIN_INT <= item <= MAX_INT:
            problems.append(_problem(path, "integer outside the 64-bit range"))
    elif isinstance(item, float):
        if not math.isfinite(item):
            problems.append(_problem(path, "NaN and Infinity are not JSON"))
    elif isinstance(item, str):
        if problem := _string_problem(item):
            problems.append(_problem(path, problem))
    elif isinstance(item, list | tuple | dict) and len(item) > MAX_ITEMS:
        problems.append(_problem(path, f"has more than {MAX_ITEMS} entries"))
    elif isinstance(item, list | tuple):
        return [(v, (*path, i)) for i, v in enumerate(item)]
    elif isinstance(item, dict):
        return _members(item, path, problems)
    else:
        problems.append(_problem(path, f"{type(item).__name__} is not a JSON value"))
    return []


def _members(
    item: dict[Any, Any], path: tuple[Any, ...], problems: list[dict[str, str]]
) -> list[tuple[Any, tuple[Any, ...]]]:
    children = []
    for key, value in item.items():
        if not isinstance(key, str):
            problems.append(_problem(path, f"key {key!r} is not a string"))
        elif problem := _string_problem(key):
            problems.append(_problem((*path, key), f"key {problem}"))
        else:
            children.append((value, (*path, key)))
    return children


def check_json(value: Any, *, what: str) -> None:
    """Raise `ValidationFailed` unless ``value`` is plain JSON that every backend stores as is.

    Refuses NaN and infinities, NUL characters, lone surrogates, non-string object keys,
    non-JSON types, nesting deeper than `MAX_DEPTH`, containers over `MAX_ITEMS` entries and
    strings over `MAX_STRING` characters; every problem is reported with its JSON pointer.
    """
    problems: list[dict[str, str]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while stack and len(problems) < 20:
        item, path = stack.pop()
        stack.extend(_children(item, path, problems))
    if problems:
        raise errors.ValidationFailed(what, problems)


def validate_with_schema(value: Any, schema: dict[str, Any] | None, *, what: str) -> None:
    """Raise `ValidationFailed` unless ``value`` satisfies the JSON Schema (None accepts all)."""
    if not schema:
        return
    validator = jsonschema.Draft202012Validator(schema)
    problems = [
        {"pointer": pointer(tuple(e.absolute_path)), "message": e.message}
        for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    ]
    if problems:
        raise errors.ValidationFailed(what, problems)


def validate_with_adapter(value: Any, adapter: TypeAdapter[Any], *, what: str) -> Any:
    """Validate with a pydantic adapter and return the value in its JSON form."""
    try:
        validated = adapter.validate_python(value)
    except PydanticValidationError as exc:
        raise errors.ValidationFailed(
            what,
            [{"pointer": pointer(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()],
        ) from exc
    return adapter.dump_python(validated, mode="json")


def canonical_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON text of ``value`` (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
