"""Refuse bad request bodies before any route (or the database) sees them.

One ASGI middleware, because the checks must run on the raw bytes and in this order:

1. size: a declared ``Content-Length`` above the limit is refused before reading, and a
   streamed body is refused as soon as it passes the limit (413);
2. media type: a body that is not ``application/json`` (415);
3. encoding: bytes that are not UTF-8 (400);
4. JSON: malformed text, ``NaN``/``Infinity``, nesting deeper than the limit (422);
5. content: lone surrogates and NUL characters, integers beyond 64 bits, oversized strings
   and arrays (422).

It runs after `Authenticate`, so an anonymous client cannot make the server parse anything.

Python's ``json`` accepts 3-5 and SQLite would store them, while PostgreSQL refuses them
and msgpack silently rewrites surrogates to ``?``: rejecting them here keeps both backends'
state identical (docs/RELIABILITY.md, bad inputs 1-7 and 11). Starlette's own body limit answers
in plain text; this one answers with the API's JSON error body like every other error.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphrun import errors, validation
from graphrun.config import DEFAULT_MAX_BODY_BYTES

__all__ = ("DEFAULT_MAX_BODY_BYTES", "RequestHygiene")

#: Bodies larger than this are parsed and checked on a worker thread, off the event loop.
OFFLOAD_BYTES = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _TooLarge(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise errors.ValidationFailed(
        "body", [{"pointer": "", "message": f"{name} is not a JSON number"}]
    )


class RequestHygiene:
    """ASGI middleware: size, media type, encoding and JSON checks on every request body."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the body of a POST, PUT or PATCH; pass everything else through."""
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            body = await self._read(headers, receive)
            if body is None:
                return  # the client went away
            if len(body) > OFFLOAD_BYTES:  # parsing a large body would stall the event loop
                await asyncio.to_thread(self._check, headers, body)
            elif body:
                self._check(headers, body)
        except errors.GraphrunError as exc:
            await JSONResponse(exc.to_dict(), status_code=exc.http_status)(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, headers: Headers, receive: Receive) -> bytes | None:
        declared = headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdecimal()):
                raise errors.MalformedBody("Content-Length is not a number.")
            if int(declared) > self.max_body_bytes:
                raise errors.BodyTooLarge(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise errors.BodyTooLarge(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check(self, headers: Headers, body: bytes) -> None:
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json" and not (
            media_type.startswith("application/") and media_type.endswith("+json")
        ):
            raise errors.UnsupportedMediaType(
                f"Send the body as application/json, not {media_type or 'an untyped body'}.",
                content_type=media_type,
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.MalformedBody(
                f"The body is not UTF-8 (byte {exc.start}).", position=exc.start
            ) from None
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise errors.ValidationFailed(
                "body", [{"pointer": "", "message": f"not JSON: {exc.msg} at {exc.pos}"}]
            ) from None
        except RecursionError:
            raise errors.ValidationFailed(
                "body",
                [{"pointer": "", "message": f"nested deeper than {validation.MAX_DEPTH}"}],
            ) from None
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise errors.ValidationFailed("body", [{"pointer": "", "message": str(exc)}]) from None
        validation.check_json(value, what="body")
