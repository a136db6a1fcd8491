"""Authorization: every route but the probes names the scope it needs.

`Authenticate` (in ``authenticate.py``) has already answered 401 to a request without an
active key (missing, malformed, unknown, revoked or expired: the caller is not told which).
`require(Scope.WRITE)` is the FastAPI dependency that answers 403 when the key lacks the
scope, and declares the bearer scheme in the OpenAPI document. With auth off
(``graphrun serve --dev``, loopback only) it lets all through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from graphrun import errors
from graphrun.engine import Engine
from graphrun.engine.keys import ApiKeys, Scope
from graphrun.storage.records import ApiKeyRecord

__all__ = ("Principal", "engine_of", "require")

_bearer = HTTPBearer(auto_error=False, description="An API key from `graphrun keys create`.")

#: The key a request was made with (None when auth is off).
Principal = ApiKeyRecord | None


async def engine_of(request: Request) -> Engine:
    """The engine the app serves (a dependency)."""
    engine: Engine = request.app.state.engine
    return engine


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only keys whose scopes include ``scope``."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if not request.app.state.auth:
            return None
        record: ApiKeyRecord | None = getattr(request.state, "api_key", None)
        if record is None:  # `Authenticate` answers 401 before this; never trust its absence
            raise errors.Unauthenticated()
        if not ApiKeys.allows(record, scope):
            raise errors.PermissionDenied(
                f"API key {record.id} lacks the {scope.value!r} scope.",
                key_id=record.id,
                required=scope.value,
            )
        return record

    return check
