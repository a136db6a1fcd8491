"""The HTTP API (FastAPI): routes, auth, request hygiene, SSE; served by `graphrun serve`."""

from __future__ import annotations

from .app import create_app

__all__ = ("create_app",)
