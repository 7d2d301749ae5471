"""Readiness means "can serve": a gateway started while the broker is down comes up ready, says the broker is
down in its /readyz body, accepts work into its outbox, and relays it once the broker is back."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest
from harness import ServiceProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_gateway_serves_while_the_broker_is_down(stack: Any, tokens: Any) -> None:
    stack.kill("broker")
    gateway = ServiceProcess(stack, "gateway", port=_free_port())
    try:
        started = time.monotonic()
        gateway.start(wait=False)
        gateway.wait_ready(timeout=120)
        ready = httpx.get(gateway.url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "degraded" and body["checks"]["broker"] == "down", body
        assert body["checks"]["database"] == "up"
        client = httpx.Client(base_url=gateway.url, timeout=30,
                              headers={"Authorization": f"Bearer {tokens('ready-alice', 'contributor')}"})
        r = client.post("/v1/cases", json={"title": "Written while the broker is down"})
        assert r.status_code == 201, r.text
        r = client.delete(f"/v1/cases/{r.json()['id']}")  # announced as case.deleted, through the outbox
        assert r.status_code in (200, 202, 204), r.text
        assert httpx.get(gateway.url + "/readyz", timeout=10).json()["outbox"]["backlog"] >= 1
        assert time.monotonic() - started < 120
    finally:
        stack.restart("broker")
    try:
        wait_for(lambda: httpx.get(gateway.url + "/readyz", timeout=10).json()["checks"]["broker"] == "up",
                 timeout=120, what="the broker to be seen again")
        wait_for(lambda: httpx.get(gateway.url + "/readyz", timeout=10).json()["outbox"].get("backlog") == 0,
                 timeout=120, what="the outbox to drain")
    finally:
        gateway.stop()
