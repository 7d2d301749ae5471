"""The forwarding proxy streams request bodies to the owning service chunk by chunk, with the limit enforced
while they stream; a declared length is passed on, a body-less request sends none (bare ASGI, the upstream a
recording httpx transport)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from casebook_gateway.routes import proxy
from casebook_platform.errors import ApiError


class Upstream(httpx.AsyncBaseTransport):
    """The owning service: records what reached it, chunk by chunk, as it arrives."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.headers: httpx.Headers | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.headers = request.headers
        async for chunk in request.stream:  # type: ignore[union-attr]
            if chunk:
                self.chunks.append(chunk)
        return httpx.Response(200, json={"got": sum(map(len, self.chunks))})


def _app(upstream: Upstream) -> FastAPI:
    app = FastAPI()
    client = httpx.AsyncClient(transport=upstream)

    @app.api_route("/v1/moderation/{rest:path}", methods=["GET", "POST"])
    async def forwarded(request: Request) -> Any:
        return await proxy.forward(request, "http://moderation", client=client)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code}}, status_code=exc.status)

    return app


async def _asgi(app: FastAPI, method: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
                ) -> tuple[int, bytes, int]:
    """(status, response body, how many request chunks the app had taken when it answered)."""
    pending = list(chunks)
    taken = 0
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if not pending:
            return {"type": "http.disconnect"}
        taken += 1
        body = pending.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "path": "/v1/moderation/c_1/reject", "raw_path": b"/v1/moderation/c_1/reject", "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "scheme": "http"}
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
    return out[0]["status"], body, taken


async def test_a_chunked_body_reaches_the_service_in_pieces_not_whole() -> None:
    upstream = Upstream()
    chunks = [bytes([65 + i]) * 64 * 1024 for i in range(8)]  # 512 KiB in 64 KiB pieces
    status, _, _ = await _asgi(_app(upstream), "POST", [(b"transfer-encoding", b"chunked")], chunks)
    assert status == 200
    assert b"".join(upstream.chunks) == b"".join(chunks)
    assert len(upstream.chunks) > 1  # streamed through, never joined into one body first
    assert upstream.headers is not None and upstream.headers.get("transfer-encoding") == "chunked"


async def test_a_declared_length_is_passed_on() -> None:
    upstream = Upstream()
    body = b'{"reasons": []}'
    status, _, _ = await _asgi(_app(upstream), "POST", [(b"content-length", str(len(body)).encode())], [body])
    assert status == 200 and b"".join(upstream.chunks) == body
    assert upstream.headers is not None and upstream.headers["content-length"] == str(len(body))


async def test_a_request_without_a_body_sends_none() -> None:
    upstream = Upstream()
    status, _, _ = await _asgi(_app(upstream), "GET", [], [b""])
    assert status == 200 and upstream.chunks == [] and "transfer-encoding" not in (upstream.headers or {})


async def test_a_body_past_the_limit_is_refused_while_it_streams() -> None:
    upstream = Upstream()
    chunks = [b"x" * 256 * 1024 for _ in range(4 * 100)]  # 100 MiB offered
    status, body, taken = await _asgi(_app(upstream), "POST", [(b"transfer-encoding", b"chunked")], chunks)
    assert status == 413 and b"request_too_large" in body
    assert sum(map(len, upstream.chunks)) <= proxy.MAX_BODY  # what passed before the limit, no more
    assert taken <= proxy.MAX_BODY // (256 * 1024) + 1  # the rest was never read
