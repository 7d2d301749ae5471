"""Bounds the gateway holds on the running platform: a 1 GB body without a token is answered at once while
the gateway's memory stays flat (the proxy streams, the limit is enforced while streaming), and a case whose
text would not fit one submission event is refused with a stable code."""

from __future__ import annotations

import io
import select
import socket
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client import User, error_code, plain_png
from harness import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GIB = 1024**3


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _post_until_answered(port: int, path: str, *, declare_length: bool) -> tuple[int, int, float]:
    """POST up to 1 GiB of body (declared, or chunked) until the gateway answers; (status, bytes sent, s)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    framing = f"Content-Length: {GIB}\r\n" if declare_length else "Transfer-Encoding: chunked\r\n"
    started = time.monotonic()
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n"
              .encode())
    chunk, sent = b"0" * 65536, 0
    frame = chunk if declare_length else b"%x\r\n%s\r\n" % (len(chunk), chunk)
    try:
        while sent < GIB and not select.select([s], [], [], 0)[0]:
            s.sendall(frame)
            sent += len(chunk)
        select.select([s], [], [], 30)
        head = s.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        head = s.recv(65536)
    finally:
        s.close()
    elapsed = time.monotonic() - started
    return int(head.split()[1]), sent, elapsed


@pytest.mark.parametrize(("path", "declare_length", "status"), [
    ("/v1/cases/c_x/studies/s_x/uploads", False, 401),  # the large-body route wants a token before any byte
    ("/v1/moderation/c_x/reject", False, 413),  # proxied to moderation: streamed, cut at the limit
    ("/v1/moderation/c_x/reject", True, 413),  # a declared length over the limit: refused unread
    ("/v1/cases", False, 413),  # a JSON route
], ids=["upload-chunked", "proxy-chunked", "proxy-declared", "json-chunked"])
def test_a_1gb_body_without_a_token_is_answered_at_once_with_memory_flat(platform: Any, path: str,
                                                                          declare_length: bool, status: int) -> None:
    gateway = platform["gateway"]
    assert gateway.proc is not None
    before = _rss_kib(gateway.proc.pid)
    got, sent, elapsed = _post_until_answered(gateway.port, path, declare_length=declare_length)
    after = _rss_kib(gateway.proc.pid)
    print(f"{path} ({'declared' if declare_length else 'chunked'}): {got} after {sent} bytes in {elapsed:.2f} s; "
          f"gateway RSS {before} -> {after} KiB")
    assert got == status
    assert sent <= 8 * 1024 * 1024, f"{sent} bytes went in before the answer"
    assert elapsed < 10
    assert after - before < 32 * 1024, f"the gateway grew by {after - before} KiB"


def test_a_case_whose_text_would_not_fit_a_submission_is_refused(users: Any) -> None:
    alice = users("contributor")
    long = "x" * 20_000
    cid = alice.create_case(title="Osteoid osteoma", presentation=long, diagnosis=long, discussion=long)["id"]
    for _ in range(4):
        alice.add_study(cid, "CT", long)  # 140 000 bytes of text in all, over the 128 KiB budget
    r = alice.post(f"/v1/cases/{cid}/publish")
    assert r.status_code == 413 and error_code(r) == "case_too_large", r.text
    assert alice.get(f"/v1/cases/{cid}").json()["status"] == "draft"  # nothing was submitted


@pytest.fixture
def small_gateway(stack: Any, platform: Any) -> Iterator[ServiceProcess]:
    """A second gateway replica (same database, broker and store) whose cases hold at most 3 images."""
    gw = ServiceProcess(stack, "gateway", env={"CASEBOOK_MAX_IMAGES_PER_CASE": "3"},
                        port=platform["gateway"].port + 700).start()
    try:
        yield gw
    finally:
        gw.stop()


def test_a_case_holds_at_most_the_image_limit(small_gateway: ServiceProcess, tokens: Any) -> None:
    alice = User(small_gateway.url, tokens(f"u{uuid.uuid4().hex[:10]}", "contributor"))
    cid = alice.create_case()["id"]
    sid = alice.add_study(cid, "US", "Lucent nidus.")
    assert alice.upload(cid, sid, plain_png(1), "a.png", "image/png").status_code == 202
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("b.png", plain_png(2))
        zf.writestr("c.png", plain_png(3))
    assert alice.upload(cid, sid, two.getvalue(), "two.zip", "application/zip").status_code == 202  # 3 of 3
    r = alice.upload(cid, sid, plain_png(4), "d.png", "image/png")
    assert r.status_code == 409 and error_code(r) == "image_limit_reached", r.text
    assert len(alice.get(f"/v1/cases/{cid}/images").json()) == 3  # nothing of the refused upload was kept
