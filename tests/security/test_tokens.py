"""Tokens: expired, unsigned (`alg: none`), wrongly signed, wrong algorithm, wrong role — all refused cleanly."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from client import User, error_code

pytestmark = [pytest.mark.e2e]


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "mallory", "name": "M", "roles": ["contributor", "admin"], "iat": now, "exp": now + 600, **over}


def test_bad_tokens_answer_401(platform: Any, stack: Any) -> None:
    secret = stack.secrets["auth_secret"]
    base = platform["gateway"].url
    unsigned = jwt.encode(_claims(), key="", algorithm="none")
    forged = jwt.encode(_claims(), "not-the-secret", algorithm="HS256")
    expired = jwt.encode(_claims(exp=int(time.time()) - 5), secret, algorithm="HS256")
    wrong_alg = jwt.encode(_claims(), secret, algorithm="HS512")
    no_sub = jwt.encode({k: v for k, v in _claims().items() if k != "sub"}, secret, algorithm="HS256")
    for token in (unsigned, forged, expired, wrong_alg, no_sub, "garbage", "a.b.c"):
        r = User(base, token).get("/v1/me")
        assert r.status_code == 401, (token, r.text)
        assert error_code(r) == "unauthenticated"
    r = User(base, None).http.get("/v1/me", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert r.status_code == 401


def test_wrong_role_is_refused(users: Any) -> None:
    reader = users("supporter")  # no contributor role
    r = reader.post("/v1/cases", json={"title": "x"})
    assert r.status_code == 403 and error_code(r) == "role_required"
    contributor = users("contributor")
    for method, path, body in [("get", "/v1/moderation/queue", None), ("post", "/v1/featured", {"case_id": "c_x"}),
                               ("put", "/v1/case-of-the-month/2026-12", {"case_id": "c_x"})]:
        r = contributor.http.request(method.upper(), path, json=body)
        assert r.status_code == 403 and error_code(r) == "role_required", (path, r.text)


def test_mass_assignment_is_rejected(users: Any) -> None:
    alice = users()
    for field, value in [("status", "approved"), ("owner_id", "bob"), ("approved", True), ("listed_public", True),
                         ("revision", 99), ("id", "c_mine")]:
        r = alice.post("/v1/cases", json={"title": "x", field: value})
        assert r.status_code == 422 and error_code(r) == "invalid_request", field
    cid = alice.create_case()["id"]
    r = alice.http.patch(f"/v1/cases/{cid}", json={"visibility": "public"})
    assert r.status_code == 422
    assert alice.get(f"/v1/cases/{cid}").json()["status"] == "draft"
