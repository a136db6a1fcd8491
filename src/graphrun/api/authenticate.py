"""Who is calling: the bearer token is checked before any body is read or any route runs.

`Authenticate` (ASGI middleware) verifies the key once per request and leaves the record in
``request.state.api_key``; each route's `require` dependency then checks the scope. Checking
first means an anonymous client gets 401 without the server reading, parsing or validating
anything it sent. The probes and the API's own description are public.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from graphrun import errors
from graphrun.storage.records import ApiKeyRecord

__all__ = ("PUBLIC_PATHS", "Authenticate", "bearer_token")

#: Paths that need no key: probes and the API's description.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})

Verifier = Callable[[str], Awaitable[ApiKeyRecord | None]]


def bearer_token(headers: Headers) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class Authenticate:
    """ASGI middleware: 401 unless the request carries an active API key."""

    def __init__(self, app: ASGIApp, *, verify: Verifier, enabled: bool = True) -> None:
        self.app = app
        self.verify = verify
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Verify the caller's key (HTTP requests to non-public paths only)."""
        if (
            not self.enabled
            or scope["type"] != "http"
            or scope["path"].removeprefix(scope.get("root_path", "")) in PUBLIC_PATHS
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        try:
            if token is None:
                raise errors.Unauthenticated()
            record = await self.verify(token)
            if record is None:
                raise errors.Unauthenticated("The API key is invalid, revoked or expired.")
        except errors.GraphrunError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else {}
            if exc.http_status == 503:
                headers["Retry-After"] = "1"
            response = JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = record
        await self.app(scope, receive, send)
