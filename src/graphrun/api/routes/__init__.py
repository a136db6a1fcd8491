"""One router per resource; `create_app` includes them all."""

from __future__ import annotations

from . import events, health, runs, workflows

__all__ = ("events", "health", "runs", "workflows")
