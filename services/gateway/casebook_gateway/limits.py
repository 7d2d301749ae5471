"""Request bodies bounded before they are read and before authentication runs (pure ASGI middleware).

A body is refused as soon as it is known to be too large: at once when `Content-Length` says so, and
while streaming otherwise (chunked bodies are counted as they arrive, never buffered here). Large
bodies are only accepted on the upload route, and only from callers that present a bearer token, so a
1 GB body without a token costs the gateway one header parse. `stream_limited` is the same limit for
code that forwards a body (the proxy): chunks pass through, the limit is enforced while they do.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from casebook_platform.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_LIMIT = 1024 * 1024  # JSON bodies, proxied bodies: a case's text is far below this
MULTIPART_SLACK = 1024 * 1024  # boundaries, part headers and small fields around the file


@dataclass(frozen=True)
class Rule:
    """A body limit for the requests whose method and path match."""

    methods: frozenset[str]
    path: re.Pattern[str]
    limit: int
    code: str = "request_too_large"
    needs_bearer: bool = False  # refuse without a token before reading anything (large bodies only)

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self.path.fullmatch(path) is not None


def gateway_rules(*, max_upload_bytes: int) -> list[Rule]:
    """The gateway's one large-body route: uploads (their own streaming check applies inside the limit)."""
    return [Rule(frozenset({"POST"}), re.compile(r"/v1/cases/[^/]+/studies/[^/]+/uploads"),
                 max_upload_bytes + MULTIPART_SLACK, code="upload_too_large", needs_bearer=True)]


async def _respond(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # the rest of the body is not read: the connection cannot be reused
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _has_bearer(scope: Scope) -> bool:
    for k, v in scope.get("headers", ()):
        if k == b"authorization":
            scheme, _, token = v.partition(b" ")
            return scheme.lower() == b"bearer" and bool(token.strip())
    return False


class BodyLimits:
    """Bound every request body; outermost middleware, so it runs before routing, parsing and auth."""

    def __init__(self, app: ASGIApp, *, rules: Sequence[Rule] = (), default_limit: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.rules = list(rules)
        self.default = default_limit

    def _rule(self, method: str, path: str) -> Rule:
        for r in self.rules:
            if r.matches(method, path):
                return r
        return Rule(frozenset({method}), re.compile(re.escape(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self._rule(scope["method"], scope["path"])
        if rule.needs_bearer and not _has_bearer(scope):
            await _respond(send, 401, "unauthenticated", "a bearer token is required")
            return
        length: int | None = None
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                if not v.isdigit() or len(v) > 18:
                    await _respond(send, 400, "bad_request", "invalid Content-Length")
                    return
                length = int(v)
        too_large = f"request bodies here are limited to {rule.limit} bytes"
        if length is not None and length > rule.limit:
            await _respond(send, 413, rule.code, too_large)
            return

        seen = 0
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > rule.limit:
                    refused = True
                    if not started:
                        await _respond(send, 413, rule.code, too_large)
                    return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:  # a disconnect we caused is not the app's error
                raise


async def stream_limited(chunks: AsyncIterator[bytes], limit: int, *, code: str = "request_too_large"
                         ) -> AsyncIterator[bytes]:
    """Pass a body through chunk by chunk, failing as soon as more than `limit` bytes have gone by.

    Raises:
        ApiError: 413 with `code` once the limit is passed (the chunks before it have been yielded).
    """
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            raise ApiError(413, code, f"request bodies here are limited to {limit} bytes")
        yield chunk
