"""The gateway's contract, end to end on the running embedded platform (tokens signed like `make token`)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
from client import error_code, plain_png, sample_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_me_and_tokens(users: Any, anonymous: Any) -> None:
    alice = users("contributor,supporter")
    r = alice.get("/v1/me")
    assert r.status_code == 200
    assert r.json()["id"] == alice.id and r.json()["roles"] == ["contributor", "supporter"]
    assert r.json()["limits"] == {"drafts": {"used": 0, "max": 10}, "unlisted": {"used": 0, "max": 10}}
    alice.create_case()
    alice.create_case(visibility="unlisted")
    alice.create_case()
    limits = alice.get("/v1/me").json()["limits"]
    assert limits == {"drafts": {"used": 2, "max": 10}, "unlisted": {"used": 1, "max": 10}}
    r = anonymous.get("/v1/me")
    assert r.status_code == 401 and error_code(r) == "unauthenticated"


def test_create_upload_publish_approve_then_visible_to_others(users: Any, anonymous: Any) -> None:
    alice, bob, editor = users("contributor"), users("contributor"), users("editor")
    case = alice.create_case()
    cid = case["id"]
    assert case["status"] == "draft" and case["licence"] == "CC BY-NC-SA 4.0"
    assert case["attribution"] == f"Case courtesy of Dr {alice.id}, Casebook, case {cid}"
    sid = alice.add_study(cid)
    r = alice.upload(cid, sid, sample_file("CT_small.dcm"), "ct.dcm")
    assert r.status_code == 202 and r.json()["images"][0]["status"] == "processing"
    r = alice.upload(cid, sid, plain_png(), "export.png", "image/png")
    assert r.status_code == 202
    images = alice.wait_images(cid, 2)
    assert [i["status"] for i in images] == ["ready", "ready"], images

    # the de-identified DICOM is served, and carries no identifier of the original
    dcm = alice.get(images[0]["url"] if images[0]["series"]["modality"] == "CT" else images[1]["url"])
    assert dcm.status_code == 200 and dcm.content[128:132] == b"DICM"
    assert b"CompressedSamples" not in dcm.content  # CT_small's PatientName

    # not visible to others before approval
    for who in (bob, anonymous):
        assert who.get(f"/v1/cases/{cid}").status_code == 404
        assert who.get(f"/v1/cases/{cid}/images").status_code == 404
        assert who.get(images[0]["url"]).status_code == 404

    r = alice.post(f"/v1/cases/{cid}/publish")
    assert r.status_code == 202 and r.json()["status"] == "submitted"
    assert bob.get(f"/v1/cases/{cid}").status_code == 404
    assert editor.get(f"/v1/cases/{cid}").status_code == 200  # editors see submitted cases

    queue_item = _wait_in_queue(editor, cid)
    assert all(c["passed"] for c in queue_item["checks"]), queue_item["checks"]
    assert editor.post(f"/v1/moderation/{cid}/claim").status_code == 200
    assert editor.post(f"/v1/moderation/{cid}/approve").status_code == 200
    approved = alice.wait_status(cid, "approved")
    assert approved["moderation"]["status"] == "approved"

    assert bob.get(f"/v1/cases/{cid}").status_code == 200
    assert anonymous.get(f"/v1/cases/{cid}").status_code == 200
    assert anonymous.get(images[0]["url"]).status_code == 200
    listed = anonymous.get("/v1/cases", params={"q": "osteoid", "limit": 100}).json()["items"]
    assert cid in [c["id"] for c in listed]

    history = alice.get(f"/v1/cases/{cid}/history").json()
    actions = [h["action"] for h in history]
    assert actions[0] == "created" and "submitted" in actions and actions[-1] == "approved"
    submitted = next(h for h in history if h["action"] == "submitted")
    assert (submitted["from_status"], submitted["to_status"]) == ("draft", "submitted")
    assert history[-1]["from_status"] == "submitted" and history[-1]["actor"] == editor.id
    assert bob.get(f"/v1/cases/{cid}/history").status_code == 403


def _wait_in_queue(editor: Any, cid: str, timeout: float = 60) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = editor.get("/v1/moderation/queue", params={"limit": 100}).json()["items"]
        for it in items:
            if it["case_id"] == cid:
                return it
        time.sleep(0.3)
    raise AssertionError(f"{cid} never reached the moderation queue")


def test_unlisted_share_link(users: Any, anonymous: Any) -> None:
    alice, bob = users(), users()
    case = alice.create_case(visibility="unlisted")
    assert case["status"] == "unlisted" and case["share_url"]
    token = case["share_url"].rsplit("/", 1)[-1]
    assert bob.get(f"/v1/cases/{case['id']}").status_code == 404  # not listed, not by id
    r = anonymous.get(f"/v1/shared/{token}")
    assert r.status_code == 200 and r.json()["id"] == case["id"] and r.json()["share_url"] is None
    assert anonymous.get(f"/v1/shared/{token[:-2]}xx").status_code == 404
    # back to draft: the link stops working
    assert alice.post(f"/v1/cases/{case['id']}/visibility", json={"visibility": "draft"}).status_code == 200
    assert anonymous.get(f"/v1/shared/{token}").status_code == 404


def test_draft_limit_holds_under_concurrency(users: Any) -> None:
    alice = users()

    def create(i: int) -> int:
        return alice.post("/v1/cases", json={"title": f"Case {i}"}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(create, range(20)))
    assert codes.count(201) == 10 and codes.count(409) == 10, codes
    r = alice.post("/v1/cases", json={"title": "one more"})
    assert r.status_code == 409 and error_code(r) == "draft_limit_reached"
    mine = alice.get("/v1/cases", params={"mine": "true", "limit": 100}).json()["items"]
    assert sum(1 for c in mine if c["visibility"] == "draft") == 10
    # unlisted has its own limit
    for i in range(10):
        assert alice.post("/v1/cases", json={"title": f"U{i}", "visibility": "unlisted"}).status_code == 201
    r = alice.post("/v1/cases", json={"title": "U11", "visibility": "unlisted"})
    assert r.status_code == 409 and error_code(r) == "unlisted_limit_reached"
    r = alice.post(f"/v1/cases/{mine[0]['id']}/visibility", json={"visibility": "unlisted"})
    assert r.status_code == 409 and error_code(r) == "unlisted_limit_reached"


def test_delete_case_removes_it_and_its_images(users: Any, platform: Any) -> None:
    alice, bob, admin = users(), users(), users("admin")
    cid = alice.create_case()["id"]
    sid = alice.add_study(cid)
    assert alice.upload(cid, sid, sample_file("MR_small.dcm"), "mr.dcm").status_code == 202
    img = alice.wait_images(cid, 1)[0]
    r = bob.http.delete(f"/v1/cases/{cid}")
    assert r.status_code == 404
    assert alice.http.delete(f"/v1/cases/{cid}").status_code == 204
    assert alice.get(f"/v1/cases/{cid}").status_code == 404
    assert alice.get(f"/v1/images/{img['id']}").status_code == 404
    other = alice.create_case()["id"]
    assert admin.http.delete(f"/v1/cases/{other}").status_code == 204


def test_edit_of_approved_case_goes_back_through_moderation(users: Any, anonymous: Any) -> None:
    alice, editor = users(), users("editor")
    cid = alice.create_case()["id"]
    sid = alice.add_study(cid)
    alice.upload(cid, sid, sample_file("CT_small.dcm"), "ct.dcm")
    alice.wait_images(cid, 1)
    alice.post(f"/v1/cases/{cid}/publish")
    _wait_in_queue(editor, cid)
    editor.post(f"/v1/moderation/{cid}/approve")
    alice.wait_status(cid, "approved")
    r = alice.http.patch(f"/v1/cases/{cid}", json={"discussion": "Updated discussion."})
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    public = anonymous.get(f"/v1/cases/{cid}")
    assert public.status_code == 200 and public.json()["discussion"] == ""  # the approved version stays public
    # an image added after approval stays private until the next approval
    alice.upload(cid, sid, sample_file("MR_small.dcm"), "mr.dcm")
    new = next(i for i in alice.wait_images(cid, 2) if i["series"]["modality"] == "MR")
    assert [i["series"]["modality"] for i in anonymous.get(f"/v1/cases/{cid}/images").json()] == ["CT"]
    assert anonymous.get(f"/v1/images/{new['id']}").status_code == 404
    assert alice.get(f"/v1/images/{new['id']}").status_code == 200
    r = alice.http.patch(f"/v1/cases/{cid}", json={"status": "approved"})
    assert r.status_code == 422 and error_code(r) == "invalid_request"


def test_playlists(users: Any, anonymous: Any) -> None:
    alice, bob = users(), users()
    draft = alice.create_case()["id"]
    r = alice.post("/v1/playlists", json={"title": "Bone tumours", "visibility": "private"})
    assert r.status_code == 201
    pid = r.json()["id"]
    r = alice.post(f"/v1/playlists/{pid}/items", json={"case_id": draft})
    assert r.status_code == 422 and error_code(r) == "not_public"
    assert bob.get(f"/v1/playlists/{pid}").status_code == 404
    assert anonymous.get(f"/v1/playlists/{pid}").status_code == 404
    pub = alice.post("/v1/playlists", json={"title": "Open", "visibility": "public"}).json()["id"]
    assert anonymous.get(f"/v1/playlists/{pub}").status_code == 200
    assert bob.post(f"/v1/playlists/{pub}/items", json={"case_id": draft}).status_code == 403
