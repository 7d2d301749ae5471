"""Forwards the contract's moderation, featuring and achievements paths to the services that own them.

The owning service answers everything about its paths (404, 405 with `Allow`, 422 naming the field);
the gateway's OpenAPI describes each operation from the service's own document (`casebook_gateway.openapi`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request, Response

from casebook_gateway.deps import HttpDep, SettingsDep
from casebook_gateway.limits import DEFAULT_LIMIT, stream_limited
from casebook_gateway.settings import Behind
from casebook_platform.errors import ApiError

log = logging.getLogger(__name__)
_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
        "proxy-authorization", "proxy-authenticate", "trailer"}
MAX_BODY = DEFAULT_LIMIT


async def forward(request: Request, base: str, *, client: httpx.AsyncClient) -> Response:
    """Forward the request unchanged (method, path, query, body, Authorization) through `client` (the gateway's,
    `HttpDep`) and relay the answer.

    Raises:
        ApiError: 413 `request_too_large` past 1 MB; 422 `invalid_request` for a header that cannot be sent
            on; 503 `service_unavailable` when the owning service cannot be reached.
    """
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}  # values trimmed: CleanRequests
    # The body is streamed through, never held whole, and the limit holds while it streams (the BodyLimits
    # middleware has already refused a declared length over it). A declared length is passed on as it is.
    length = request.headers.get("content-length")
    chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
    body = stream_limited(request.stream(), MAX_BODY) if (length and length != "0") or chunked else None
    if body is not None and length:
        headers["content-length"] = length
    # The path as routed (percent-decoded), encoded again: any character a client may send stays a valid URL.
    url = base + quote(request.scope["path"], safe="/")
    try:
        r = await client.request(request.method, url, params=list(request.query_params.multi_items()),
                                 content=body, headers=headers)
    except httpx.LocalProtocolError as exc:  # what the caller sent cannot be sent on (a header's value)
        raise ApiError(422, "invalid_request", "the request cannot be forwarded as sent") from exc
    except httpx.HTTPError as exc:
        log.warning("forwarding %s %s failed: %r", request.method, url, exc)
        raise ApiError(503, "service_unavailable", "the service behind this path is unavailable") from exc
    out = {k: v for k, v in r.headers.items() if k.lower() not in _HOP}
    return Response(r.content, status_code=r.status_code, headers=out)


def _forwarder(service: Behind) -> Callable[..., Awaitable[Response]]:
    async def forwarded(request: Request, client: HttpDep, settings: SettingsDep) -> Response:
        return await forward(request, settings.service_url(service), client=client)

    forwarded.__name__ = f"forward_to_{service}"
    return forwarded


# Path prefixes each service owns, as routes (hidden from the schema: the services' documents describe them).
PREFIXES: list[tuple[Behind, str]] = [
    ("moderation", "/v1/moderation/{rest:path}"), ("featuring", "/v1/featured"), ("featuring", "/v1/featured.atom"),
    ("featuring", "/v1/case-of-the-month/{rest:path}"), ("achievements", "/v1/users/{user_id}/achievements"),
    ("achievements", "/v1/achievements/{rest:path}")]
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def build_router() -> APIRouter:
    """One route per prefix, for every method: the owning service decides what each method means."""
    router = APIRouter()
    for service, path in PREFIXES:
        router.add_api_route(path, _forwarder(service), methods=_ALL_METHODS, include_in_schema=False)
    return router
