"""One place where failures become HTTP responses: ``{code, message, details}`` JSON.

`GraphrunError` subclasses carry their own status; FastAPI's validation errors become 422
with a JSON pointer per problem; unknown routes and methods keep their 404/405. Anything
else is a bug: logged with its traceback and answered 500 ``internal_error``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from graphrun import errors, validation

__all__ = ("RETRY_AFTER_S", "install_error_handlers", "pointer")

logger = logging.getLogger("graphrun.api")

#: Seconds a client is told to wait after 503 (storage busy or unreachable).
RETRY_AFTER_S = 1

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def pointer(location: Sequence[Any]) -> str:
    """The JSON pointer of a FastAPI error location (``("body", "input", 0)`` -> ``/input/0``).

    The first element names where the value was (body, query, path, header): the
    ``location`` field of the error says that.
    """
    return validation.pointer(location[1:])


def _graphrun_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.GraphrunError)
    headers: dict[str, str] = {}
    if exc.http_status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    elif exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.http_status >= 500:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "pointer": pointer(e.get("loc", ())),
            "location": str(e["loc"][0]) if e.get("loc") else "body",
            "message": str(e.get("msg", "invalid")),
        }
        for e in exc.errors()
    ]
    return JSONResponse(errors.ValidationFailed("request", problems).to_dict(), status_code=422)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    body = {
        "code": _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"),
        "message": str(exc.detail),
        "details": {},
    }
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; list them all.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods the spec documents for the request's path."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        request.app.state, "allowed_methods", None
    )
    if table is None:
        table = [
            (
                re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"),
                sorted(m.upper() for m in operations),
            )
            for path, operations in request.app.openapi()["paths"].items()
        ]
        request.app.state.allowed_methods = table
    path = request.url.path
    return sorted({m for pattern, methods in table if pattern.match(path) for m in methods})


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    body = {"code": "internal_error", "message": "Internal server error.", "details": {}}
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(errors.GraphrunError, _graphrun_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
