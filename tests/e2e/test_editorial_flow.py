"""The editorial path through the running platform: automatic rejection, fix and resubmit, claim and
approve, Collector count, featuring and Case of the Month, then deletion undoing the count and the feature."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from atom_feed import parse_atom
from client import User, error_code, eventually, sample_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _eventually(check: Any, timeout: float = 60, what: str = "condition") -> Any:
    return eventually(check, timeout, what)


def _next_month(now: datetime) -> str:
    return f"{now.year + 1}-01" if now.month == 12 else f"{now.year}-{now.month + 1:02d}"


def test_submit_reject_fix_approve_feature_cotm_delete(users: Any, anonymous: User) -> None:
    alice, editor, other_editor = users("contributor"), users("editor"), users("editor")
    cid = alice.create_case(diagnostic_certainty="probable")["id"]
    sid = alice.add_study(cid)
    alice.upload(cid, sid, sample_file("CT_small.dcm"), "ct.dcm")
    alice.wait_images(cid, 1)

    assert alice.post(f"/v1/cases/{cid}/publish").status_code == 202
    rejected = alice.wait_status(cid, "rejected")
    codes = [r["code"] for r in rejected["moderation"]["reasons"]]
    assert codes == ["certainty_too_low"], codes
    history = alice.get(f"/v1/cases/{cid}/history").json()
    assert history[-1]["action"] == "rejected" and history[-1]["reasons"][0]["code"] == "certainty_too_low"
    assert anonymous.get(f"/v1/cases/{cid}").status_code == 404

    assert alice.http.patch(f"/v1/cases/{cid}", json={"diagnostic_certainty": "certain"}).status_code == 200
    assert alice.post(f"/v1/cases/{cid}/publish").status_code == 202

    def queued() -> bool:
        items = editor.get("/v1/moderation/queue", params={"limit": 100}).json()["items"]
        return any(i["case_id"] == cid for i in items)

    _eventually(queued, what="the resubmitted case in the queue")
    assert editor.post(f"/v1/moderation/{cid}/claim").status_code == 200
    r = other_editor.post(f"/v1/moderation/{cid}/claim")
    assert r.status_code == 409 and error_code(r) == "already_claimed"
    assert editor.post(f"/v1/moderation/{cid}/approve").status_code == 200
    alice.wait_status(cid, "approved")
    assert anonymous.get(f"/v1/cases/{cid}").status_code == 200

    def collector() -> int:
        return int(anonymous.get(f"/v1/users/{alice.id}/achievements").json()["collector"]["count"])

    _eventually(lambda: collector() == 1, what="Collector count 1")
    standing = anonymous.get(f"/v1/users/{alice.id}/achievements").json()["collector"]
    assert standing["level"] == 1 and standing["tier"] == "bronze"

    _eventually(lambda: editor.post("/v1/featured", json={"case_id": cid}).status_code in (200, 201),
                what="featuring the approved case")
    featured = anonymous.get("/v1/featured").json()["items"]
    assert cid in [f["case_id"] for f in featured]

    month = _next_month(datetime.now(UTC))
    candidates = anonymous.get(f"/v1/case-of-the-month/{month}/candidates").json()["items"]
    assert cid in [c["case_id"] for c in candidates]
    r = editor.http.put(f"/v1/case-of-the-month/{month}", json={"case_id": cid})
    assert r.status_code == 200, r.text
    r = editor.http.put(f"/v1/case-of-the-month/{datetime.now(UTC):%Y-%m}", json={"case_id": cid})
    assert r.status_code == 422 and error_code(r) == "not_from_preceding_month"
    assert anonymous.get(f"/v1/case-of-the-month/{month}").json()["case_id"] == cid

    def in_feed() -> list[tuple[str, str]]:
        r = anonymous.get("/v1/featured.atom", params={"limit": 100})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml"), r.text
        _, entries = parse_atom(r.content)
        return [(e.category, e.title) for e in entries if e.link.endswith(f"/cases/{cid}")]

    title = anonymous.get(f"/v1/cases/{cid}").json()["title"]
    label = datetime.strptime(month, "%Y-%m").strftime("%B %Y")
    # the pick came after the feature: newest first
    assert in_feed() == [("case-of-the-month", f"Case of the Month, {label}: {title}"), ("featured", title)]
    atom = anonymous.get("/openapi.json").json()["paths"]["/v1/featured.atom"]["get"]
    assert "application/atom+xml" in atom["responses"]["200"]["content"]

    assert alice.http.delete(f"/v1/cases/{cid}").status_code == 204
    _eventually(lambda: collector() == 0, what="Collector count back to 0")
    _eventually(lambda: cid not in [f["case_id"] for f in anonymous.get("/v1/featured").json()["items"]],
                what="the deleted case leaving the featured list")
    assert in_feed() == []
    assert anonymous.get(f"/v1/case-of-the-month/{month}").json()["case_id"] == cid  # history stays
