"""Executing runs on LangGraph: the Engine facade, executor, worker, timers and schedules."""

from __future__ import annotations

from .engine import Engine

__all__ = ("Engine",)
