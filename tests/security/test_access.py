"""Two users: every path of the contract on another user's case, image, export or playlist answers 404 or
403 as the contract says — never its content."""

from __future__ import annotations

from typing import Any

import pytest
from client import error_code, sample_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def alices_case(users: Any) -> dict[str, Any]:
    alice = users("contributor,supporter")
    cid = alice.create_case(title="Alice secret case")["id"]
    sid = alice.add_study(cid)
    alice.upload(cid, sid, sample_file("CT_small.dcm"), "ct.dcm")
    image = alice.wait_images(cid, 1)[0]
    playlist = alice.post("/v1/playlists", json={"title": "Private", "visibility": "private"}).json()["id"]
    export = alice.post(f"/v1/cases/{cid}/exports", json={"kind": "originals"})
    assert export.status_code == 202, export.text
    return {"alice": alice, "case": cid, "study": sid, "image": image["id"], "playlist": playlist,
            "export": export.json()["id"]}


def test_another_users_private_things_are_invisible(users: Any, alices_case: dict[str, Any]) -> None:
    bob = users("contributor,supporter")
    c, s, i, p, x = (alices_case[k] for k in ("case", "study", "image", "playlist", "export"))
    not_found = [
        ("GET", f"/v1/cases/{c}", None), ("PATCH", f"/v1/cases/{c}", {"title": "mine"}),
        ("DELETE", f"/v1/cases/{c}", None), ("POST", f"/v1/cases/{c}/visibility", {"visibility": "unlisted"}),
        ("POST", f"/v1/cases/{c}/publish", None), ("GET", f"/v1/cases/{c}/history", None),
        ("POST", f"/v1/cases/{c}/studies", {"modality": "CT"}), ("GET", f"/v1/cases/{c}/images", None),
        ("GET", f"/v1/images/{i}", None), ("POST", f"/v1/cases/{c}/exports", {"kind": "originals"}),
        ("POST", f"/v1/cases/{c}/exports", {"kind": "presentation"}), ("GET", f"/v1/exports/{x}", None),
        ("GET", f"/v1/playlists/{p}", None), ("POST", f"/v1/playlists/{p}/items", {"case_id": c}),
        ("POST", f"/v1/playlists/{p}/exports", None),
    ]
    for method, path, body in not_found:
        r = bob.http.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert error_code(r) == "not_found"
        assert "Alice secret case" not in r.text
    r = bob.http.post(f"/v1/cases/{c}/studies/{s}/uploads", files={"file": ("x.dcm", b"0" * 200)})
    assert r.status_code == 404
    mine = bob.get("/v1/cases", params={"mine": "true"}).json()["items"]
    assert c not in [m["id"] for m in mine]
    # still intact for its owner
    assert alices_case["alice"].get(f"/v1/cases/{c}").json()["title"] == "Alice secret case"


def test_exports_follow_the_contract_on_public_cases(users: Any, alices_case: dict[str, Any]) -> None:
    alice, editor = alices_case["alice"], users("editor")
    c = alices_case["case"]
    alice.post(f"/v1/cases/{c}/publish")
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and editor.post(f"/v1/moderation/{c}/approve").status_code != 200:
        time.sleep(0.5)
    alice.wait_status(c, "approved")
    bob, supporter = users("contributor"), users("supporter")
    r = bob.post(f"/v1/cases/{c}/exports", json={"kind": "originals"})
    assert r.status_code == 403 and error_code(r) == "not_owner"
    r = bob.post(f"/v1/cases/{c}/exports", json={"kind": "presentation"})
    assert r.status_code == 403 and error_code(r) == "role_required"
    r = supporter.post(f"/v1/cases/{c}/exports", json={"kind": "presentation"})
    assert r.status_code == 202
    assert bob.get(f"/v1/exports/{r.json()['id']}").status_code == 404  # only the requester sees it
    r = bob.post(f"/v1/cases/{c}/exports", json={"kind": "everything"})
    assert r.status_code == 422 and error_code(r) == "invalid_request"
