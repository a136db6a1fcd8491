"""Bearer-token auth: every route but the probes names the scope it needs.

`require(Scope.WRITE)` is a FastAPI dependency: it answers 401 without a valid key (missing,
malformed, unknown, revoked or expired: the caller is not told which) and 403 when the key
lacks the scope. With auth off (``graphrun serve --dev``, loopback only) it lets all through.
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
        if credentials is None:
            raise errors.Unauthenticated()
        record = await (await engine_of(request)).api_keys.verify(credentials.credentials)
        if record is None:
            raise errors.Unauthenticated("The API key is invalid, revoked or expired.")
        if not ApiKeys.allows(record, scope):
            raise errors.PermissionDenied(
                f"API key {record.id} lacks the {scope.value!r} scope.",
                key_id=record.id,
                required=scope.value,
            )
        return record

    return check
