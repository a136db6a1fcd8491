"""How the executor names a failure: by where the exception came from, not by its text."""

from __future__ import annotations

import pytest

from graphrun.engine.executor import _error_info
from graphrun.storage.checkpoints import strict_serializer


class Opaque:
    """A class no checkpoint may hold."""


def test_a_type_error_from_the_serializer_is_a_serialization_error() -> None:
    with pytest.raises(TypeError) as raised:
        strict_serializer().dumps_typed({"state": Opaque()})
    error = _error_info(raised.value, "node")
    assert (error.type, error.code, error.node) == (
        "SerializationError",
        "serialization_error",
        "node",
    )


def test_a_type_error_that_only_mentions_serializing_is_the_apps_own() -> None:
    error = _error_info(TypeError("my value is not serializable"), "node")
    assert (error.type, error.code) == ("TypeError", "node_error")
