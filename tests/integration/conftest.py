"""Fixtures for integration tests: the shared ones (``gated``, `entered`) live in tests/conftest."""

from __future__ import annotations

from tests.conftest import entered

__all__ = ("entered",)
