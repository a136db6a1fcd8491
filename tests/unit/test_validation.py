from __future__ import annotations

import math

import pytest

from graphrun import ValidationFailed
from graphrun.validation import MAX_DEPTH, canonical_hash, check_json, validate_with_schema


@pytest.mark.parametrize(
    ("value", "pointer"),
    [
        ({"a": math.nan}, "/a"),
        ({"a": [1, math.inf]}, "/a/1"),
        ({"name": "x\x00y"}, "/name"),
        ({"name": "\ud800"}, "/name"),
        ({"k\x00": 1}, "/k\\u0000"),
        ({1: "a"}, ""),
        ({"s": {1, 2}}, "/s"),
    ],
)
def test_check_json_rejects_values_backends_store_differently(value: object, pointer: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        check_json(value, what="input")
    assert info.value.errors[0]["pointer"] == pointer
    assert info.value.code == "validation_failed"


def test_check_json_rejects_deep_nesting() -> None:
    value: object = 1
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(ValidationFailed, match="nested deeper"):
        check_json(value, what="input")


def test_check_json_accepts_plain_json() -> None:
    check_json({"a": [1, 2.5, "x", None, True, {"b": []}], "é": "ü"}, what="input")


def test_validate_with_schema_names_the_field() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with pytest.raises(ValidationFailed) as info:
        validate_with_schema({"n": "x"}, schema, what="input")
    assert info.value.errors == [{"pointer": "/n", "message": "'x' is not of type 'integer'"}]


def test_canonical_hash_ignores_key_order() -> None:
    assert canonical_hash({"a": 1, "b": 2}) == canonical_hash({"b": 2, "a": 1})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": 2})
