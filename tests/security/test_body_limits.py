"""Bodies are bounded before they are read and before authentication: a 1 GB body is answered at once
(Content-Length) or after the limit (chunked), and the gateway's memory stays flat."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client import User
from harness import ServiceProcess

pytestmark = [pytest.mark.e2e]

GiB = 1024**3
UPLOAD_LIMIT = 8 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def gateway(stack: Any, platform: Any) -> Iterator[ServiceProcess]:
    """A gateway of its own, with a small upload limit so a streamed upload can pass it quickly; the platform's
    services run too, so that the proxied path streams to moderation (without it the answer is 503)."""
    p = ServiceProcess(stack, "gateway", env={"CASEBOOK_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}, port=_free_port())
    p.start()
    yield p
    p.stop()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _send(port: int, path: str, *, total: int, chunked: bool, token: str | None = None,
          content_type: str = "application/json") -> tuple[int, float, int]:
    """Stream up to `total` bytes of body; stop when the answer arrives. Returns (status, seconds, bytes sent)."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    if token:
        head.append(f"Authorization: Bearer {token}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    started = time.monotonic()
    sent = 0
    block = b"{" + b" " * (1024 * 1024 - 1)
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break
            piece = block[: min(len(block), total - sent)]
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            except OSError:  # the gateway closed the connection after answering
                break
            sent += len(piece)
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, time.monotonic() - started, sent


def test_one_gigabyte_without_a_token_is_refused_at_once_with_flat_memory(gateway: ServiceProcess) -> None:
    assert gateway.proc is not None
    pid = gateway.proc.pid
    before = _rss(pid)
    cases = [
        ("/v1/cases", False),  # a JSON route, Content-Length of 1 GB: 413 before a byte is read
        ("/v1/cases/c1/studies/s1/uploads", False),  # the upload route without a token: 401 at once
        ("/v1/cases/c1/studies/s1/uploads", True),
        ("/v1/cases", True),  # chunked: refused once 1 MB has gone by
        ("/v1/moderation/c1/reject", True),  # the proxy: same limit, while streaming
    ]
    for path, chunked in cases:
        status, seconds, sent = _send(gateway.port, path, total=GiB, chunked=chunked)
        assert status in (401, 413), (path, chunked, status)
        assert seconds < 5, (path, chunked, seconds)
        assert sent < 64 * 1024 * 1024, (path, chunked, sent)  # it was not read to the end
    grown = _rss(pid) - before
    assert grown < 40 * 1024 * 1024, f"gateway memory grew by {grown / 1e6:.0f} MB"
    assert gateway.proc.poll() is None


def test_an_authenticated_upload_beyond_the_limit_is_cut_off_while_streaming(gateway: ServiceProcess,
                                                                              tokens: Any) -> None:
    token = tokens("alice", "contributor")
    status, _, sent = _send(gateway.port, "/v1/cases/c1/studies/s1/uploads", total=GiB, chunked=False,
                            token=token, content_type="multipart/form-data; boundary=x")
    assert status == 413  # Content-Length alone says it is too large
    assert sent < 64 * 1024 * 1024
    status, _, sent = _send(gateway.port, "/v1/cases/c1/studies/s1/uploads", total=GiB, chunked=True,
                            token=token, content_type="multipart/form-data; boundary=x")
    assert status in (404, 413, 422), status  # the case does not exist, or the limit came first
    assert sent < 64 * 1024 * 1024


def test_oversized_multipart_headers_are_refused(gateway: ServiceProcess, tokens: Any) -> None:
    alice = User(gateway.url, tokens("alice-limits", "contributor"))
    cid = alice.create_case()["id"]
    sid = alice.add_study(cid)
    pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 3000) for i in range(7))  # 21 KB of part headers
    body = (b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.dcm\"\r\n" + pad
            + b"\r\nDICM\r\n--x--\r\n")
    r = alice.http.post(f"/v1/cases/{cid}/studies/{sid}/uploads", content=body,
                        headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large", r.text
    fields = b"".join(b"--x\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n" % i for i in range(40))
    r = alice.http.post(f"/v1/cases/{cid}/studies/{sid}/uploads", content=fields + b"--x--\r\n",
                        headers={"content-type": "multipart/form-data; boundary=x"})
    # Fields other than `file` are unknown fields (422), refused before they can grow.
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
    big_field = b"--x\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n" + b"n" * 200_000 + b"\r\n--x--\r\n"
    r = alice.http.post(f"/v1/cases/{cid}/studies/{sid}/uploads", content=big_field,
                        headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", r.text
