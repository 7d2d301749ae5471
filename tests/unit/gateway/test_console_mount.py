"""The console beside the API on a bare app: index at `/`, client routes fall back only for HTML GETs, and the
embedded mode's token route, which a production gateway does not have."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from casebook_gateway.console import console_path, mount_console
from casebook_gateway.routes import dev_tokens
from casebook_gateway.settings import Settings
from casebook_platform.errors import install_error_handlers

SECRET = "a-secret-for-these-tests-only-0123456789"


def _app(dist: Path) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        return {"thing": thing}

    @app.post("/v1/only-post")
    async def only_post() -> dict[str, str]:
        return {}

    mount_console(app, dist)
    return app


@pytest.fixture
def built(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><script src="/console-assets/main-X.js"></script>')
    (tmp_path / "assets" / "main-X.js").write_text("console.log(1)")
    return tmp_path


def test_index_assets_and_client_routes(built: Path) -> None:
    c = TestClient(_app(built))
    r = c.get("/")
    assert r.status_code == 200 and "main-X.js" in r.text and r.headers["cache-control"] == "no-cache"
    assert c.get("/console-assets/main-X.js").text == "console.log(1)"
    page = c.get("/cases/c_1/edit", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and "main-X.js" in page.text
    assert c.head("/moderation", headers={"Accept": "text/html"}).status_code == 200


def test_the_api_keeps_its_answers(built: Path) -> None:
    c = TestClient(_app(built))
    html = {"Accept": "text/html"}
    assert c.get("/v1/things/a", headers=html).json() == {"thing": "a"}
    for path in ("/v1/nothing", "/docs/nothing", "/console-assets/missing.js", "/dicomweb/studies/x"):
        r = c.get(path, headers=html)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
    r = c.get("/cases/c_1", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = c.post("/cases/c_1", headers=html)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = c.get("/v1/only-post", headers=html)
    assert r.status_code == 405 and r.headers["allow"] == "POST"


def test_without_a_build_the_page_says_how(tmp_path: Path) -> None:
    c = TestClient(_app(tmp_path / "absent"))
    r = c.get("/")
    assert r.status_code == 200 and "make console" in r.text
    assert c.get("/cases/x", headers={"Accept": "text/html"}).status_code == 404


def test_console_paths() -> None:
    assert console_path("/") and console_path("/cases/x") and console_path("/v1x")
    assert not console_path("/v1") and not console_path("/v1/cases") and not console_path("/metrics")


def _token_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.settings = settings
    if dev_tokens.enabled(settings):
        app.include_router(dev_tokens.router)
    return app


def test_embedded_mode_mints_tokens_signed_like_make_token() -> None:
    c = TestClient(_token_app(Settings(mode="embedded", auth_secret=SECRET)))
    r = c.post("/v1/dev/tokens", json={"user": "alice", "name": "Dr Alice", "roles": ["editor", "contributor"]})
    assert r.status_code == 200
    claims = jwt.decode(r.json()["token"], SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["name"], claims["roles"]) == ("alice", "Dr Alice", ["contributor", "editor"])
    assert claims["exp"] - claims["iat"] == dev_tokens.TTL_S
    for body in ({"user": "alice", "roles": ["admin"]}, {"user": "a b"}, {"user": "alice", "extra": 1}, {}):
        bad = c.post("/v1/dev/tokens", json=body)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request", body


def test_production_has_no_token_route() -> None:
    settings = Settings(mode="production", auth_jwks_url="https://idp.invalid/jwks", auth_issuer="i",
                        auth_audience="a", s3_secret_key="a-real-secret-key")
    assert not dev_tokens.enabled(settings)
    r = TestClient(_token_app(settings)).post("/v1/dev/tokens", json={"user": "alice"})
    assert r.status_code == 404
    assert not dev_tokens.enabled(Settings(mode="embedded", auth_secret="", auth_jwks_url="https://idp.invalid/j"))
