"""Executing runs on LangGraph: the Engine facade, executor, worker and authoring helpers."""

from __future__ import annotations

from .authoring import wait_for_input
from .engine import Engine

__all__ = ("Engine", "wait_for_input")
