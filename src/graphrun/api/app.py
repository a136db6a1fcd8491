"""`create_app`: the FastAPI application for one `Engine`."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

from fastapi import Depends, FastAPI

from graphrun.engine import Engine

from .authenticate import Authenticate
from .errors import install_error_handlers
from .hygiene import DEFAULT_MAX_BODY_BYTES, RequestHygiene
from .routes import apps, events, health, retention, runs, schedules, workflows
from .routes._params import known_query_only

__all__ = ("create_app",)

DESCRIPTION = """\
Start, inspect and steer durable LangGraph runs.

Authenticate with `Authorization: Bearer <key>` (keys from `graphrun keys create`).
Scopes: `read` (GET), `write` (start and steer runs), `admin` (everything); each includes
the ones before it. Errors are JSON `{code, message, details}`.
"""


def create_app(
    engine: Engine, *, auth: bool = True, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> FastAPI:
    """The HTTP API over an open ``engine`` (which the caller opens and closes).

    Args:
        engine: The engine whose runs the API serves.
        auth: Require API keys; off only for local development (``graphrun serve --dev``).
        max_body_bytes: Largest request body accepted (413 above it).
    """
    app = FastAPI(
        title="graphrun",
        version=version("graphrun"),
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(known_query_only)],
    )
    app.state.engine = engine
    app.state.auth = auth
    #: Set when the server begins to shut down: open streams and long-polls end at once.
    app.state.shutdown = asyncio.Event()
    install_error_handlers(app)
    for module in (runs, events, workflows, apps, schedules, retention, health):
        app.include_router(module.router)
    app.add_middleware(RequestHygiene, max_body_bytes=max_body_bytes)
    # Added last, so it runs first: nothing of an anonymous request is read or parsed.
    app.add_middleware(Authenticate, verify=lambda t: engine.keys.verify(t), enabled=auth)
    return app
