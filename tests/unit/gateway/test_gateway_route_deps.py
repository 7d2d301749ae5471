"""The gateway's routes take their settings and HTTP client from `deps.py`, so an app that provides them
another way (here: `dependency_overrides`, with nothing in `app.state`) serves the same answers."""

from __future__ import annotations

import httpx
import jwt
from fastapi import FastAPI
from fastapi.testclient import TestClient

from casebook_gateway.deps import get_http, get_settings
from casebook_gateway.openapi import FORWARDED, install_merged_openapi
from casebook_gateway.routes import dev_tokens, proxy
from casebook_gateway.settings import Settings
from casebook_platform.errors import install_error_handlers

SECRET = "a-secret-for-these-tests-only-0123456789"


def _app(settings: Settings, upstream: httpx.MockTransport | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.dependency_overrides[get_settings] = lambda: settings
    if upstream is not None:
        client = httpx.AsyncClient(transport=upstream)
        app.dependency_overrides[get_http] = lambda: client
    return app


def test_the_token_route_signs_with_the_settings_it_is_given() -> None:
    app = _app(Settings(mode="embedded", auth_secret=SECRET, auth_issuer="casebook-deps-test"))
    app.include_router(dev_tokens.router)
    r = TestClient(app).post("/v1/dev/tokens", json={"user": "alice", "roles": ["editor"]})
    assert r.status_code == 200
    claims = jwt.decode(r.json()["token"], SECRET, algorithms=["HS256"], issuer="casebook-deps-test")
    assert (claims["sub"], claims["name"], claims["roles"]) == ("alice", "alice", ["editor"])


def test_forwarded_paths_go_to_the_configured_service_through_the_given_client() -> None:
    seen: list[httpx.Request] = []

    def moderation(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": []})

    app = _app(Settings(gateway_moderation_url="http://moderation.deps-test:9"), httpx.MockTransport(moderation))
    app.include_router(proxy.build_router())
    r = TestClient(app).get("/v1/moderation/queue", params={"limit": "5"})
    assert (r.status_code, r.json()) == (200, {"items": []})
    assert [str(q.url) for q in seen] == ["http://moderation.deps-test:9/v1/moderation/queue?limit=5"]


def test_a_forwarded_service_that_cannot_be_reached_answers_503() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    app = _app(Settings(), httpx.MockTransport(down))
    app.include_router(proxy.build_router())
    r = TestClient(app).post("/v1/moderation/c_1/claim")
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"


def test_the_merged_document_asks_each_forwarded_service_through_the_given_client() -> None:
    asked: list[str] = []

    def services(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(503)

    settings = Settings(gateway_moderation_url="http://m.deps-test", gateway_featuring_url="http://f.deps-test",
                        gateway_achievements_url="http://a.deps-test")
    app = _app(settings, httpx.MockTransport(services))
    app.include_router(dev_tokens.router)  # a route with schemas, as the gateway's own document has
    install_merged_openapi(app)
    doc = TestClient(app).get("/openapi.json").json()
    assert doc["x-casebook-missing"] == sorted(FORWARDED)
    assert sorted(asked) == ["http://a.deps-test/openapi.json", "http://f.deps-test/openapi.json",
                             "http://m.deps-test/openapi.json"]


def test_forwarded_header_values_lose_their_surrounding_whitespace() -> None:
    # httptools hands a value over as sent ("Bearer "); the HTTP client refuses to send one that ends in a space,
    # which made the proxy answer 503 for a request the owning service should have answered 401.
    seen: list[httpx.Request] = []

    def moderation(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"error": {"code": "unauthenticated", "message": "no token"}})

    app = _app(Settings(), httpx.MockTransport(moderation))
    app.include_router(proxy.build_router())
    r = TestClient(app).get("/v1/moderation/queue", headers={"Authorization": "Bearer ", "X-Extra": "\t a b "})
    assert r.status_code == 401
    assert (seen[0].headers["authorization"], seen[0].headers["x-extra"]) == ("Bearer", "a b")


def test_a_request_that_cannot_be_sent_on_is_the_callers_error_not_an_outage() -> None:
    def refuses(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError("Illegal header value")

    app = _app(Settings(), httpx.MockTransport(refuses))
    app.include_router(proxy.build_router())
    r = TestClient(app).get("/v1/moderation/queue")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
