"""Production tokens: RS256 from a JWKS URL, `iss` and `aud` required and checked, key refetches rate-limited."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from casebook_platform.auth import TokenVerifier
from casebook_platform.errors import ApiError
from casebook_platform.settings import CommonSettings

ISSUER, AUDIENCE = "https://idp.test/", "casebook"


@pytest.fixture(scope="module")
def idp() -> Iterator[dict[str, Any]]:
    """A JWKS endpoint on 127.0.0.1 that counts how often it is asked."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    state: dict[str, Any] = {"key": key, "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["hits"] += 1
            body = json.dumps({"keys": [jwk]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    yield state
    server.shutdown()


def _settings(idp: dict[str, Any], **extra: Any) -> CommonSettings:
    return CommonSettings(mode="production", auth_jwks_url=idp["url"], auth_issuer=ISSUER, auth_audience=AUDIENCE,
                          s3_secret_key="a-real-secret-key", **extra)


def _token(idp: dict[str, Any], kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "alice", "roles": ["editor"], "iat": now, "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, idp["key"], algorithm="RS256", headers={"kid": kid})


def test_valid_token_is_accepted(idp: dict[str, Any]) -> None:
    p = TokenVerifier(_settings(idp)).verify(_token(idp))
    assert p.id == "alice" and p.has("editor")


@pytest.mark.parametrize("claims", [{"iss": None}, {"aud": None}, {"iss": "https://other.test/"},
                                    {"aud": "another-app"}])
def test_issuer_and_audience_are_required_and_checked(idp: dict[str, Any], claims: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as err:
        TokenVerifier(_settings(idp)).verify(_token(idp, **claims))
    assert err.value.status == 401 and err.value.code == "unauthenticated"


def test_production_refuses_a_jwks_url_without_issuer_or_audience(idp: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="ISSUER"):
        CommonSettings(mode="production", auth_jwks_url=idp["url"], s3_secret_key="a-real-secret-key")


def test_unknown_key_ids_cannot_force_refetches(idp: dict[str, Any]) -> None:
    verifier = TokenVerifier(_settings(idp, auth_jwks_min_refetch_s=60))
    verifier.verify(_token(idp))
    before = idp["hits"]
    for i in range(50):  # a flood of made-up key ids
        with pytest.raises(ApiError):
            verifier.verify(_token(idp, kid=f"made-up-{i}"))
    assert idp["hits"] - before <= 1
    assert verifier.verify(_token(idp)).id == "alice"  # the known key still works, from the cache
