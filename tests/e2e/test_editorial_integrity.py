"""Editorial integrity through the running platform: readers see exactly the revision an editor approved,
editors never decide their own cases, limits and deletions hold on every path.

Every new route is tried by the owner, by another user, and by an editor who owns the case (contributor and
editor at once)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest
from client import User, error_code, eventually, plain_png, sample_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _eventually(check: Any, timeout: float = 90, what: str = "condition") -> Any:
    return eventually(check, timeout, what)

REASON = {"code": "poor_image_quality", "message": "Window the CT for bone."}


def _queue_item(editor: User, cid: str) -> dict[str, Any] | None:
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = editor.get("/v1/moderation/queue", params=params).json()
        for item in page["items"]:
            if item["case_id"] == cid:
                return dict(item)
        cursor = page["next_cursor"]
        if not cursor:
            return None


def _wait_queued(editor: User, cid: str, revision: int | None = None) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        item = _queue_item(editor, cid)
        return item if item and (revision is None or item["revision"] == revision) else None

    return dict(_eventually(found, what=f"{cid} in the moderation queue"))


def _case_with_image(user: User, **fields: Any) -> tuple[str, str]:
    cid = user.create_case(**fields)["id"]
    sid = user.add_study(cid, "CT", "Lucent cortical nidus.")
    assert user.upload(cid, sid, sample_file("CT_small.dcm"), "ct.dcm").status_code == 202
    user.wait_images(cid, 1)
    return cid, sid


def _approve(owner: User, editor: User, cid: str) -> dict[str, Any]:
    r = owner.post(f"/v1/cases/{cid}/publish")
    assert r.status_code == 202, r.text
    _wait_queued(editor, cid, r.json()["revision"])
    r = editor.post(f"/v1/moderation/{cid}/approve")
    assert r.status_code == 200, r.text
    return owner.wait_status(cid, "approved")


def test_editors_cannot_claim_approve_or_reject_their_own_cases(users: Any, anonymous: User) -> None:
    owner_editor, editor = users("contributor,editor"), users("editor")
    cid, _ = _case_with_image(owner_editor)
    assert owner_editor.post(f"/v1/cases/{cid}/publish").status_code == 202
    item = _wait_queued(editor, cid)
    assert item["own_case"] is False and _queue_item(owner_editor, cid)["own_case"] is True  # type: ignore[index]
    for action, body in (("claim", None), ("approve", None), ("reject", {"reasons": [REASON]})):
        r = owner_editor.post(f"/v1/moderation/{cid}/{action}", json=body)
        assert r.status_code == 403 and error_code(r) == "own_case", (action, r.text)
    assert owner_editor.get(f"/v1/cases/{cid}").json()["status"] == "submitted"
    # the new read routes serve the editor who owns the case as its owner
    revs = owner_editor.get(f"/v1/cases/{cid}/revisions")
    assert revs.status_code == 200 and [r["status"] for r in revs.json()] == ["submitted"]
    assert owner_editor.get(f"/v1/moderation/{cid}/checks").status_code == 200
    assert editor.post(f"/v1/moderation/{cid}/approve").status_code == 200
    owner_editor.wait_status(cid, "approved")
    # Collector counts the approval by another editor, and only that one
    _eventually(lambda: anonymous.get(f"/v1/users/{owner_editor.id}/achievements").json()["collector"]["count"] == 1,
                what="Collector count 1")


def test_rejection_needs_a_reason_with_a_message_and_the_owner_sees_it(users: Any) -> None:
    alice, editor = users(), users("editor")
    cid, _ = _case_with_image(alice)
    assert alice.post(f"/v1/cases/{cid}/publish").status_code == 202
    _wait_queued(editor, cid)
    for bad in ({"reasons": []}, {}, {"reasons": None}, {"reasons": [{"code": "x", "message": ""}]},
                {"reasons": [{"code": "x", "message": "   "}]}, {"reasons": [{"code": "x"}]}, {"reasons": "x"}):
        r = editor.post(f"/v1/moderation/{cid}/reject", json=bad)
        assert r.status_code == 422 and error_code(r) == "invalid_request", (bad, r.text)
    assert editor.post(f"/v1/moderation/{cid}/reject", json={"reasons": [REASON]}).status_code == 200
    case = alice.wait_status(cid, "rejected")
    assert case["moderation"]["reasons"] == [REASON]
    assert case["visibility"] == "draft"  # returned to its owner as a draft
    last = alice.get(f"/v1/cases/{cid}/history").json()[-1]
    assert (last["action"], last["actor"], last["reasons"]) == ("rejected", editor.id, [REASON])
    revs = alice.get(f"/v1/cases/{cid}/revisions").json()
    assert revs[-1]["status"] == "rejected" and revs[-1]["reasons"] == [REASON]


def test_rejected_cases_return_as_drafts_and_count_against_the_limit(users: Any) -> None:
    alice = users()
    drafts = [alice.create_case(title=f"Draft {i}", diagnostic_certainty="possible")["id"] for i in range(10)]
    unlisted = alice.create_case(title="Shared", visibility="unlisted")["id"]
    # publishing two drafts frees two places; the automatic checks reject them (no image, low certainty)
    for cid in drafts[:2]:
        assert alice.post(f"/v1/cases/{cid}/publish").status_code == 202
    drafts += [alice.create_case(title=f"Draft {i}")["id"] for i in (10, 11)]
    for cid in drafts[:2]:
        case = alice.wait_status(cid, "rejected")
        assert case["visibility"] == "draft" and {r["code"] for r in case["moderation"]["reasons"]} >= {"no_images"}
    mine = alice.get("/v1/cases", params={"mine": "true", "limit": 100}).json()["items"]
    assert sum(1 for c in mine if c["visibility"] == "draft") == 12  # over the limit; nothing was deleted
    for body in ({"title": "more"}, {"title": "more", "visibility": "unlisted"}):
        r = alice.post("/v1/cases", json=body)
        assert r.status_code == 409 and error_code(r) == "draft_limit_reached", body
    r = alice.post(f"/v1/cases/{unlisted}/visibility", json={"visibility": "draft"})
    assert r.status_code == 409 and error_code(r) == "draft_limit_reached"
    for cid in drafts[-2:]:
        assert alice.http.delete(f"/v1/cases/{cid}").status_code == 204
    # back at 10: no more drafts, but an unlisted case may be created again
    assert error_code(alice.post("/v1/cases", json={"title": "more"})) == "draft_limit_reached"
    assert alice.post("/v1/cases", json={"title": "U", "visibility": "unlisted"}).status_code == 201
    assert alice.http.delete(f"/v1/cases/{drafts[2]}").status_code == 204
    assert alice.post("/v1/cases", json={"title": "fits"}).status_code == 201


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PATCH", "/v1/cases/{cid}", {"title": None}, "title"),
    ("PATCH", "/v1/cases/{cid}", {"systems": None}, "systems"),
    ("PATCH", "/v1/cases/{cid}", {"discussion": None}, "discussion"),
    ("PATCH", "/v1/cases/{cid}", {"patient_age": "forty"}, "patient_age"),
    ("PATCH", "/v1/cases/{cid}", {"tags": "bone"}, "tags"),
    ("PATCH", "/v1/cases/{cid}", {"title": 5}, "title"),
    ("POST", "/v1/cases", {"title": None}, "title"),
    ("POST", "/v1/cases", {"title": "x", "patient_sex": 3}, "patient_sex"),
    ("POST", "/v1/cases/{cid}/studies", {"modality": None}, "modality"),
    ("POST", "/v1/cases/{cid}/studies", {"modality": "CT", "position": "first"}, "position"),
    ("POST", "/v1/cases/{cid}/visibility", {"visibility": None}, "visibility"),
    ("POST", "/v1/playlists", {"title": None}, "title"),
    ("POST", "/v1/cases/{cid}/exports", {"kind": None}, "kind"),
])
def test_null_and_wrong_type_fields_answer_422_naming_the_field(users: Any, method: str, path: str,
                                                                 body: dict[str, Any], field: str) -> None:
    alice = users("contributor,supporter")
    cid = alice.create_case()["id"]
    r = alice.http.request(method, path.format(cid=cid), json=body)
    assert r.status_code == 422 and error_code(r) == "invalid_request", r.text
    assert field in r.json()["error"]["message"]
    assert alice.get(f"/v1/cases/{cid}").json()["title"]  # nothing was erased


def test_readers_see_the_approved_revision_only(users: Any, anonymous: User) -> None:
    alice, bob, editor, owner_editor = users(), users(), users("editor"), users("contributor,editor")
    cid, sid = _case_with_image(alice, title="Osteoid osteoma of the tibia", discussion="Classic nidus.")
    first_image = alice.get(f"/v1/cases/{cid}/images").json()[0]["id"]
    _approve(alice, editor, cid)

    # later changes: a new study with findings, an image, and an edit of the text
    sid2 = alice.add_study(cid, "MR", "Marrow oedema around the nidus.")
    assert alice.upload(cid, sid2, sample_file("MR_small.dcm"), "mr.dcm").status_code == 202
    alice.wait_images(cid, 2)
    r = alice.http.patch(f"/v1/cases/{cid}", json={"discussion": "Zebrafish sign, edited.", "title": "Zebrafish sign"})
    assert r.status_code == 200 and r.json()["status"] == "submitted"

    for reader in (bob, anonymous):
        seen = reader.get(f"/v1/cases/{cid}").json()
        assert (seen["title"], seen["discussion"]) == ("Osteoid osteoma of the tibia", "Classic nidus.")
        assert [s["id"] for s in seen["studies"]] == [sid] and seen["studies"][0]["images"] == 1
        assert [i["id"] for i in reader.get(f"/v1/cases/{cid}/images").json()] == [first_image]
    # search reads the published text only
    assert cid not in [c["id"] for c in anonymous.get("/v1/cases", params={"q": "zebrafish"}).json()["items"]]
    assert cid in [c["id"] for c in anonymous.get("/v1/cases", params={"q": "tibia", "limit": 100}).json()["items"]]
    assert cid in [c["id"] for c in alice.get("/v1/cases", params={"q": "zebrafish", "mine": "true"}).json()["items"]]
    # a playlist shows the published title
    pid = bob.post("/v1/playlists", json={"title": "Bone", "visibility": "public"}).json()["id"]
    assert bob.post(f"/v1/playlists/{pid}/items", json={"case_id": cid}).status_code == 200
    assert anonymous.get(f"/v1/playlists/{pid}").json()["cases"][0]["title"] == "Osteoid osteoma of the tibia"
    # the owner and editors see the working copy
    assert alice.get(f"/v1/cases/{cid}").json()["discussion"] == "Zebrafish sign, edited."
    assert editor.get(f"/v1/cases/{cid}").json()["discussion"] == "Zebrafish sign, edited."

    # revisions: owner and editors; the diff names fields, studies and images added
    revs = alice.get(f"/v1/cases/{cid}/revisions")
    assert revs.status_code == 200
    body = revs.json()
    assert [r["status"] for r in body] == ["approved", "submitted"]
    diff = body[-1]["diff"]
    assert diff["base_revision"] == body[0]["n"]
    assert {f["field"] for f in diff["fields"]} == {"title", "discussion"}
    assert diff["studies_added"] == [sid2] and len(diff["images_added"]) == 1 and diff["images_removed"] == []
    assert editor.get(f"/v1/cases/{cid}/revisions").json() == body
    assert bob.get(f"/v1/cases/{cid}/revisions").status_code == 403
    assert anonymous.get(f"/v1/cases/{cid}/revisions").status_code == 401
    assert owner_editor.get(f"/v1/cases/{cid}/revisions").status_code == 200  # an editor (not the owner)
    frozen = alice.get(f"/v1/cases/{cid}/revisions/{body[0]['n']}").json()
    assert frozen["discussion"] == "Classic nidus." and frozen["image_ids"] == [first_image]
    assert [s["findings"] for s in frozen["studies"]] == ["Lucent cortical nidus."]
    assert alice.get(f"/v1/cases/{cid}/revisions/9999").status_code == 404
    # the queue shows the editor that diff
    item = _wait_queued(editor, cid, body[-1]["n"])
    assert item["diff"]["studies_added"] == [sid2]

    # approval publishes the submitted revision
    assert editor.post(f"/v1/moderation/{cid}/approve").status_code == 200

    def published() -> bool:
        seen = anonymous.get(f"/v1/cases/{cid}").json()
        return seen["discussion"] == "Zebrafish sign, edited." and len(seen["studies"]) == 2

    _eventually(published, what="the second revision published")
    assert len(anonymous.get(f"/v1/cases/{cid}/images").json()) == 2


def test_presentations_read_the_published_revision(users: Any) -> None:
    alice, editor, fan = users(), users("editor"), users("contributor,supporter")
    cid, _ = _case_with_image(alice, discussion="Approved discussion text.")
    _approve(alice, editor, cid)
    r = alice.http.patch(f"/v1/cases/{cid}", json={"discussion": "Pending discussion text."})
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    export_id = fan.post(f"/v1/cases/{cid}/exports", json={"kind": "presentation"}).json()["id"]

    def url() -> str | None:
        body = fan.get(f"/v1/exports/{export_id}").json()
        return body.get("download_url") if body.get("status") == "ready" else None

    html = httpx.get(_eventually(url, timeout=180, what="presentation ready"), timeout=60).text
    assert "Approved discussion text." in html and "Pending discussion text." not in html


def test_an_upload_during_moderation_is_not_published_with_that_approval(users: Any, anonymous: User) -> None:
    alice, editor = users(), users("editor")
    cid, sid = _case_with_image(alice)
    r = alice.post(f"/v1/cases/{cid}/publish")
    assert r.status_code == 202
    _wait_queued(editor, cid, r.json()["revision"])
    assert alice.upload(cid, sid, plain_png(5, 300), "late.png", "image/png").status_code == 202
    late = next(i for i in alice.wait_images(cid, 2) if i["series"]["modality"] != "CT")
    assert editor.post(f"/v1/moderation/{cid}/approve").status_code == 200
    alice.wait_status(cid, "approved")
    assert late["id"] not in [i["id"] for i in anonymous.get(f"/v1/cases/{cid}/images").json()]
    assert anonymous.get(f"/v1/images/{late['id']}").status_code == 404
    revs = alice.get(f"/v1/cases/{cid}/revisions").json()
    assert revs[-1]["status"] == "pending" and revs[-1]["diff"]["images_added"] == [late["id"]]
    assert alice.get(f"/v1/cases/{cid}/revisions/{revs[-1]['n']}").json()["status"] == "pending"


def test_deleting_a_case_deletes_its_exports(users: Any) -> None:
    alice, editor, fan = users("contributor,supporter"), users("editor"), users("contributor,supporter")
    cid, _ = _case_with_image(alice)
    _approve(alice, editor, cid)
    exports = {who: who.post(f"/v1/cases/{cid}/exports", json={"kind": kind}).json()["id"]
               for who, kind in ((alice, "originals"), (fan, "presentation"))}

    def ready(who: User) -> str | None:
        body = who.get(f"/v1/exports/{exports[who]}").json()
        return body.get("download_url") if body.get("status") == "ready" else None

    urls = {who: _eventually(lambda who=who: ready(who), timeout=180, what="export ready") for who in exports}
    for url in urls.values():
        assert httpx.get(url, timeout=30).status_code == 200
    assert alice.http.delete(f"/v1/cases/{cid}").status_code == 204
    for who, export_id in exports.items():
        r = who.get(f"/v1/exports/{export_id}")
        assert r.status_code == 404 and error_code(r) == "not_found"
    for url in urls.values():
        _eventually(lambda url=url: httpx.get(url, timeout=30).status_code in (403, 404), what="archive removed")


def test_share_links_are_renewed_and_revoked(users: Any, anonymous: User) -> None:
    alice, bob, owner_editor = users(), users(), users("contributor,editor")
    case = alice.create_case(visibility="unlisted")
    cid, old = case["id"], case["share_url"].rsplit("/", 1)[-1]
    r = alice.post(f"/v1/cases/{cid}/share-link")
    assert r.status_code == 200
    new = r.json()["share_url"].rsplit("/", 1)[-1]
    assert new != old
    assert anonymous.get(f"/v1/shared/{old}").status_code == 404
    assert anonymous.get(f"/v1/shared/{new}").status_code == 200
    assert bob.post(f"/v1/cases/{cid}/share-link").status_code == 404
    assert owner_editor.post(f"/v1/cases/{cid}/share-link").status_code == 404  # an editor who is not the owner
    assert anonymous.post(f"/v1/cases/{cid}/share-link").status_code == 401
    # the editor's own unlisted case works the same
    own = owner_editor.create_case(visibility="unlisted")["id"]
    assert owner_editor.post(f"/v1/cases/{own}/share-link").status_code == 200
    # leaving unlisted revokes the link; coming back issues a new one
    assert alice.post(f"/v1/cases/{cid}/visibility", json={"visibility": "draft"}).status_code == 200
    assert anonymous.get(f"/v1/shared/{new}").status_code == 404
    r = alice.post(f"/v1/cases/{cid}/share-link")
    assert r.status_code == 409 and error_code(r) == "not_unlisted"
    back = alice.post(f"/v1/cases/{cid}/visibility", json={"visibility": "unlisted"}).json()["share_url"]
    assert back and back.rsplit("/", 1)[-1] not in (old, new)


def test_readers_see_an_adults_age_rounded_and_the_owner_what_was_entered(users: Any, anonymous: User) -> None:
    alice, editor = users(), users("editor")
    ages = {}
    for age in (47, 93):
        cid, _ = _case_with_image(alice, patient_age=age)
        _approve(alice, editor, cid)
        ages[age] = cid
    assert anonymous.get(f"/v1/cases/{ages[47]}").json()["patient_age"] == 45
    assert anonymous.get(f"/v1/cases/{ages[93]}").json()["patient_age"] == "90+"
    assert alice.get(f"/v1/cases/{ages[93]}").json()["patient_age"] == 93
    shared = alice.create_case(visibility="unlisted", patient_age=61)["share_url"]
    assert anonymous.get("/v1/shared/" + shared.rsplit("/", 1)[-1]).json()["patient_age"] == 60


def test_the_owner_sees_how_complete_the_case_is(users: Any, anonymous: User) -> None:
    alice, bob = users(), users()
    case = alice.create_case(tags=[], discussion="")
    assert case["completeness"]["missing"] == ["findings", "discussion", "tags", "ready_image"]
    sid = alice.add_study(case["id"], "CT", "")
    alice.upload(case["id"], sid, sample_file("CT_small.dcm"), "ct.dcm")
    alice.wait_images(case["id"], 1)
    alice.http.patch(f"/v1/cases/{case['id']}", json={"tags": ["bone"], "discussion": "Classic."})
    got = alice.get(f"/v1/cases/{case['id']}").json()["completeness"]
    assert got["missing"] == ["findings:study-1"] and 0 < got["percent"] < 100
    shared = alice.create_case(visibility="unlisted")
    assert anonymous.get("/v1/shared/" + shared["share_url"].rsplit("/", 1)[-1]).json()["completeness"] is None
    assert bob.get(f"/v1/cases/{case['id']}").status_code == 404


def test_image_quality_advice_is_shown_and_never_rejects(users: Any) -> None:
    alice, bob, editor = users(), users(), users("editor")
    cid, _ = _case_with_image(alice)  # one 128 × 128 CT slice: too small, and a single slice of a CT
    assert alice.post(f"/v1/cases/{cid}/publish").status_code == 202
    item = _wait_queued(editor, cid)
    assert [a["code"] for a in item["advice"]] == ["image_too_small", "single_slice"]
    assert all(c["passed"] for c in item["checks"])  # advice is not a failed check
    checks = alice.get(f"/v1/moderation/{cid}/checks")
    assert checks.status_code == 200 and checks.json()["advice"] == item["advice"]
    assert bob.get(f"/v1/moderation/{cid}/checks").status_code == 404
    assert alice.get(f"/v1/cases/{cid}").json()["status"] == "submitted"  # still waiting for an editor


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_zip_is_taken_member_by_member(users: Any) -> None:
    alice = users()
    cid = alice.create_case()["id"]
    sid = alice.add_study(cid)
    data = _zip({"series/ct.dcm": sample_file("CT_small.dcm"), "series/broken.dcm": b"not a dicom file" * 20,
                 "notes.txt": b"patient notes", "key.png": plain_png(1)})
    r = alice.upload(cid, sid, data, "study.zip", "application/zip")
    assert r.status_code == 202, r.text
    body = r.json()
    assert len(body["images"]) == 2
    assert {(m["name"], m["code"]) for m in body["rejected"]} == {("series/broken.dcm", "invalid_dicom"),
                                                                  ("notes.txt", "unsupported_media")}
    assert all(m["message"] for m in body["rejected"])
    assert len(alice.wait_images(cid, 2)) == 2
    # an unsafe archive is still refused whole
    r = alice.upload(cid, sid, _zip({"../escape.dcm": sample_file("CT_small.dcm")}), "bad.zip", "application/zip")
    assert r.status_code == 422 and error_code(r) == "unsafe_archive"
