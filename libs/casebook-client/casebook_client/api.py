"""A thin client of Casebook's public v1 API (the routes of API.md a contributor needs), over httpx.

Reads are retried on network errors and 429/502/503/504; writes are not (a POST retried blindly could create a
second case or send a file twice): the upload loop decides, after checking what the server already holds.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class ApiError(Exception):
    """The server refused a request: its HTTP status and the contract's stable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class NetworkError(Exception):
    """The server could not be reached (or answered 429/502/503/504) after the retries."""


def _error(r: httpx.Response) -> ApiError:
    try:
        body = r.json()["error"]
        return ApiError(r.status_code, str(body["code"]), str(body.get("message", "")))
    except (ValueError, KeyError, TypeError):
        return ApiError(r.status_code, f"http_{r.status_code}", r.text[:200])


class _Reader(io.RawIOBase):
    """The bytes of one upload, read by httpx in chunks; reports each chunk sent."""

    def __init__(self, data: bytes, sent: Callable[[int], None]) -> None:
        self._buf = memoryview(data)
        self._pos = 0
        self._sent = sent

    def readable(self) -> bool:
        return True

    # Seekable, so that httpx can tell the length and send Content-Length (the server refuses an oversized
    # body before reading it) instead of a chunked body.
    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence]
        self._pos = max(0, min(len(self._buf), base + offset))
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = len(self._buf) if size is None or size < 0 else min(len(self._buf), self._pos + size)
        chunk = bytes(self._buf[self._pos:end])
        self._pos = end
        if chunk:
            self._sent(len(chunk))
        return chunk


class Api:
    """One caller (a bearer token) talking to one Casebook base URL."""

    def __init__(self, base_url: str, token: str | None, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 120, retries: int = 4, backoff: float = 0.5) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        # Downloads go to the presigned URL the server handed out, never with the bearer token.
        self.plain = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)
        self.retries = retries
        self.backoff = backoff

    def close(self) -> None:
        self.http.close()
        self.plain.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, *, retry: bool, **kw: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                r = self.http.request(method, path, **kw)
            except httpx.TransportError as exc:
                if not retry or attempt >= self.retries:
                    raise NetworkError(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
            else:
                if r.status_code < 400:
                    return r
                if not (retry and r.status_code in RETRY_STATUSES and attempt < self.retries):
                    if r.status_code in RETRY_STATUSES:
                        raise NetworkError(f"{method} {path}: {r.status_code} {_error(r).code}")
                    raise _error(r)
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def get(self, path: str, **kw: Any) -> Any:
        return self._send("GET", path, retry=True, **kw).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self._send("POST", path, retry=False, json=body).json()

    # The routes used by the commands (API.md).

    def me(self) -> dict[str, Any]:
        return dict(self.get("/v1/me"))

    def create_case(self, fields: dict[str, Any]) -> dict[str, Any]:
        return dict(self.post("/v1/cases", fields))

    def case(self, case_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/cases/{case_id}"))

    def create_study(self, case_id: str, modality: str, position: int) -> dict[str, Any]:
        return dict(self.post(f"/v1/cases/{case_id}/studies", {"modality": modality, "position": position}))

    def upload(self, case_id: str, study_id: str, data: bytes, filename: str, content_type: str,
               sent: Callable[[int], None] | None = None) -> dict[str, Any]:
        """One file as multipart `file`: `{"images": [...], "rejected": [...]}`. Not retried (see the module)."""
        body = _Reader(data, sent or (lambda n: None))
        r = self._send("POST", f"/v1/cases/{case_id}/studies/{study_id}/uploads", retry=False,
                       files={"file": (filename, body, content_type)})
        return dict(r.json())

    def images(self, case_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v1/cases/{case_id}/images"))

    def request_export(self, case_id: str, kind: str) -> dict[str, Any]:
        return dict(self.post(f"/v1/cases/{case_id}/exports", {"kind": kind}))

    def export(self, export_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/exports/{export_id}"))

    def download(self, url: str) -> Iterator[tuple[int | None, bytes]]:
        """The archive at `url` in chunks: (total bytes if known, chunk). Raises ApiError or NetworkError."""
        # The bearer token goes to the API's own origin only; a presigned object-store URL gets none.
        foreign = url.startswith(("http://", "https://")) and not url.startswith(self.base_url + "/")
        client = self.plain if foreign else self.http
        try:
            with client.stream("GET", url) as r:
                if r.status_code >= 400:
                    r.read()
                    raise _error(r)
                length = r.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
                for chunk in r.iter_bytes(1 << 16):
                    yield total, chunk
        except httpx.TransportError as exc:
            raise NetworkError(f"download: {exc.__class__.__name__}: {exc}") from exc
