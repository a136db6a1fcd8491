"""Executing runs on LangGraph: the Engine facade, executor, worker and authoring helpers."""

from __future__ import annotations

from .authoring import sleep, timeout, wait_for_input, wait_for_signal
from .engine import Engine

__all__ = ("Engine", "sleep", "timeout", "wait_for_input", "wait_for_signal")
