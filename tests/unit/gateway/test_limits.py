"""Body limits as pure ASGI: refused before the app reads a byte (Content-Length) or once the limit passes
(streamed); forwarded bodies pass chunk by chunk under the same limit."""

from __future__ import annotations

import re
from typing import Any

import pytest

from casebook_gateway.limits import BodyLimits, Rule, stream_limited
from casebook_platform.errors import ApiError


async def _call(mw: BodyLimits, *, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
                ) -> tuple[int, int]:
    """Run one request through the middleware; returns (status, bytes the app read)."""
    sent: list[dict[str, Any]] = []
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    mw.app = _reading_app
    _reading_app.read = 0  # type: ignore[attr-defined]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    await mw(scope, receive, send)
    return sent[0]["status"], _reading_app.read  # type: ignore[attr-defined]


async def _reading_app(scope: Any, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        _reading_app.read += len(message.get("body", b""))  # type: ignore[attr-defined]
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _mw() -> BodyLimits:
    upload = Rule(frozenset({"POST"}), re.compile(r"/up"), 100, code="upload_too_large", needs_bearer=True)
    return BodyLimits(_reading_app, rules=[upload], default_limit=10)


async def test_declared_length_over_the_limit_is_refused_unread() -> None:
    status, read = await _call(_mw(), path="/v1/cases", headers=[(b"content-length", b"1073741824")],
                               chunks=[b"x" * 10])
    assert (status, read) == (413, 0)


async def test_streamed_body_is_cut_off_at_the_limit() -> None:
    status, read = await _call(_mw(), path="/v1/cases", headers=[], chunks=[b"x" * 6, b"y" * 6, b"z" * 6])
    assert status == 413 and read <= 10


async def test_large_route_wants_a_token_before_reading() -> None:
    status, read = await _call(_mw(), path="/up", headers=[(b"content-length", b"50")], chunks=[b"x" * 50])
    assert (status, read) == (401, 0)
    status, read = await _call(_mw(), path="/up", headers=[(b"content-length", b"50"),
                                                           (b"authorization", b"Bearer t")], chunks=[b"x" * 50])
    assert (status, read) == (201, 50)


async def test_malformed_content_length_is_a_400() -> None:
    status, _ = await _call(_mw(), path="/v1/cases", headers=[(b"content-length", b"12abc")], chunks=[b""])
    assert status == 400


async def test_stream_limited_passes_chunks_then_refuses() -> None:
    async def chunks() -> Any:
        for _ in range(5):
            yield b"a" * 4

    got: list[bytes] = []
    with pytest.raises(ApiError) as err:
        async for c in stream_limited(chunks(), 10):
            got.append(c)
    assert err.value.status == 413 and err.value.code == "request_too_large"
    assert sum(map(len, got)) <= 10
