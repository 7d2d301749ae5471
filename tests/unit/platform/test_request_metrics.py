"""The request middleware: every answer carries a request id and is counted by its route template."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from casebook_platform.errors import install_error_handlers
from casebook_platform.metrics import Metrics
from casebook_platform.service import RequestMetrics


def _app() -> FastAPI:
    app = FastAPI()
    app.state.metrics = Metrics("probe")
    app.add_middleware(RequestMetrics)

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"x" * 1000

        return StreamingResponse(chunks())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("handler bug")

    return app


def _count(app: FastAPI, route: str, status: str) -> float:
    value = app.state.metrics.registry.get_sample_value(
        "casebook_http_requests_total", {"service": "probe", "method": "GET", "route": route, "status": status})
    return value or 0.0


def test_answers_carry_the_callers_request_id_or_a_new_one() -> None:
    app = _app()
    with TestClient(app) as client:
        given = client.get("/items/7", headers={"x-request-id": "abc123"})
        fresh = client.get("/items/8")
    assert given.headers["x-request-id"] == "abc123"
    assert len(fresh.headers["x-request-id"]) == 32 and fresh.headers["x-request-id"] != "abc123"


def test_requests_are_counted_by_route_template_and_status() -> None:
    app = _app()
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/items/1").status_code == 200
        assert client.get("/items/2").status_code == 200
        streamed = client.get("/stream")
        assert streamed.status_code == 200 and len(streamed.content) == 3000
        assert client.get("/boom").status_code == 500
        assert client.get("/nowhere").status_code == 404
    assert _count(app, "/items/{item_id}", "200") == 2
    assert _count(app, "/stream", "200") == 1
    assert _count(app, "/boom", "500") == 1
    assert _count(app, "unmatched", "404") == 1
    duration = app.state.metrics.registry.get_sample_value(
        "casebook_http_request_duration_seconds_count", {"service": "probe", "method": "GET", "route": "/stream"})
    assert duration == 1


def test_routes_see_header_values_without_surrounding_whitespace() -> None:
    app = FastAPI()
    app.state.metrics = Metrics("probe")
    install_error_handlers(app)
    app.add_middleware(RequestMetrics)

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str]:
        return {"authorization": request.headers["authorization"], "x-extra": request.headers["x-extra"]}

    with TestClient(app) as client:
        r = client.get("/echo", headers={"Authorization": "Bearer abc ", "X-Extra": "\t a b "})
    assert r.json() == {"authorization": "Bearer abc", "x-extra": "a b"}
    assert _count(app, "/echo", "200") == 1  # still counted by its route
