"""JSON errors with stable codes; nothing a client sends becomes a 500 without a code."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


_STATUS_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "upload_too_large", 415: "unsupported_media",
                 422: "invalid_request", 429: "too_many_requests"}


# Control characters (C0 and C1) in a path segment or a query parameter: never meaningful, and PostgreSQL
# refuses NUL in text. The OpenAPI documents the same rule (`openapi.PARAM_PATTERN`).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(x) for x in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_message(errors: list[dict[str, Any]]) -> str:
    """`field: problem; field: problem` for the first ten problems of a refused request."""
    parts = []
    for e in errors[:10]:
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "json_invalid":
            parts.append(f"body: not valid JSON ({e.get('ctx', {}).get('error', msg)})")
        else:
            parts.append(f"{_field(tuple(e.get('loc', ())))}: {msg}")
    return "; ".join(parts) or "invalid request"


def allowed_methods(app: Any, scope: Scope) -> list[str]:
    """Every method some route answers on this path (the `Allow` of a 405)."""
    methods: set[str] = set()
    probe = {**scope, "method": "\x00"}
    for route in iter_route_contexts(app.router.routes):
        if route.methods and route.matches(probe)[0] != Match.NONE:
            methods.update(route.methods)
    return sorted(methods)


_OWS = (b" ", b"\t")


def _trimmed(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]] | None:
    """The headers with the whitespace around each value removed, or None when there is none to remove."""
    if not any(v[:1] in _OWS or v[-1:] in _OWS for _, v in headers):
        return None
    return [(k, v.strip(b" \t")) for k, v in headers]


class CleanRequests:
    """What every route may take for granted about a request.

    A header's value never includes the whitespace around it (RFC 9110 5.5): h11 removed it, httptools (the
    parser `serve` runs) hands it over as sent, and a value such as "Bearer " would reach token checks and the
    gateway's proxy, whose client refuses to send it. And a path segment or query parameter holding a control
    character is answered 422 `invalid_request` naming the parameter, so the routes (and the database behind
    them) never see one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = _trimmed(scope.get("headers", []))
            if headers is not None:
                scope["headers"] = headers  # in place: the middlewares around read what routing adds to it
            problem = self._problem(scope)
            if problem is not None:
                body = json.dumps(error_body("invalid_request", problem)).encode()
                await send({"type": "http.response.start", "status": 422,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _problem(scope: Scope) -> str | None:
        path: str = scope.get("path", "")
        if _CONTROL.search(path):
            names = []
            app = scope.get("app")
            for route in iter_route_contexts(getattr(getattr(app, "router", None), "routes", [])):
                match, child = route.matches(scope)
                if match != Match.NONE:
                    names = [k for k, v in child.get("path_params", {}).items()
                             if isinstance(v, str) and _CONTROL.search(v)]
                    break
            return f"{', '.join(names) or 'path'}: control characters are not allowed"
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            for key, value in parse_qsl(query, keep_blank_values=True):
                if _CONTROL.search(key) or _CONTROL.search(value):
                    return f"{key if not _CONTROL.search(key) else 'query'}: control characters are not allowed"
        return None


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to `{"error": {"code", "message"}}`; trim header values and refuse control characters in
    paths and queries (`CleanRequests`)."""
    app.add_middleware(CleanRequests)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid_request", validation_message(list(exc.errors()))), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route matching the path; the path's methods are the union.
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(error_body("internal_error", "an unexpected error occurred"), status_code=500)
