"""Routes the contract's moderation, featuring and achievements paths to the services that own them."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request, Response

from casebook_platform.errors import ApiError

router = APIRouter(prefix="/v1")
_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
        "proxy-authorization", "proxy-authenticate", "trailer"}


async def forward(request: Request, base: str) -> Response:
    """Forward the request unchanged (method, path, query, body, Authorization) and relay the answer.

    Raises:
        ApiError: 503 `service_unavailable` when the owning service cannot be reached.
    """
    client: httpx.AsyncClient = request.app.state.http
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
    body = await request.body()
    if len(body) > 1024 * 1024:
        raise ApiError(413, "request_too_large", "request bodies here are limited to 1 MB")
    try:
        r = await client.request(request.method, base + request.url.path, params=request.query_params,
                                 content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ApiError(503, "service_unavailable", "the service behind this path is unavailable") from exc
    out = {k: v for k, v in r.headers.items() if k.lower() not in _HOP}
    return Response(r.content, status_code=r.status_code, headers=out)


def _settings(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.settings


@router.api_route("/moderation/{rest:path}", methods=["GET", "POST"], tags=["moderation"],
                  summary="Moderation queue and decisions (editors) — served by the moderation service")
async def moderation(rest: str, request: Request) -> Response:
    return await forward(request, _settings(request).gateway_moderation_url)


@router.api_route("/featured", methods=["GET", "POST"], tags=["featuring"],
                  summary="Featured cases — served by the featuring service")
async def featured(request: Request) -> Response:
    return await forward(request, _settings(request).gateway_featuring_url)


@router.api_route("/case-of-the-month/{rest:path}", methods=["GET", "PUT"], tags=["featuring"],
                  summary="Case of the Month — served by the featuring service")
async def case_of_the_month(rest: str, request: Request) -> Response:
    return await forward(request, _settings(request).gateway_featuring_url)


@router.get("/users/{user_id}/achievements", tags=["achievements"],
            summary="A user's achievements — served by the achievements service")
async def achievements(user_id: str, request: Request) -> Response:
    return await forward(request, _settings(request).gateway_achievements_url)


@router.get("/achievements/{rest:path}", tags=["achievements"],
            summary="Achievement levels — served by the achievements service")
async def achievement_levels(rest: str, request: Request) -> Response:
    return await forward(request, _settings(request).gateway_achievements_url)
