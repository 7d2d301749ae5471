"""The gateway's pure rules: who sees a case, what may be published, how a study's images are ordered."""

from __future__ import annotations

from typing import Any

import pytest

from casebook_gateway import core
from casebook_gateway.core import Viewer

OWNER = Viewer("alice", frozenset({"contributor"}))
OTHER = Viewer("bob", frozenset({"contributor"}))
EDITOR = Viewer("ed", frozenset({"editor"}))
ADMIN = Viewer("root", frozenset({"admin"}))
ANONYMOUS = Viewer(None, frozenset())


def _case(visibility: str, listed_public: bool = False) -> dict[str, Any]:
    return {"owner_id": "alice", "visibility": visibility, "listed_public": listed_public}


def test_roles() -> None:
    assert EDITOR.is_editor and not EDITOR.is_admin
    assert ADMIN.is_editor and ADMIN.is_admin
    assert not OWNER.is_editor and not ANONYMOUS.is_editor


@pytest.mark.parametrize(("case", "viewer", "sees"), [
    (_case("draft"), OWNER, True),
    (_case("draft"), OTHER, False),
    (_case("draft"), EDITOR, False),  # a draft never went to moderation
    (_case("draft"), ADMIN, True),
    (_case("draft"), ANONYMOUS, False),
    (_case("unlisted"), OTHER, False),  # only through its share link
    (_case("unlisted"), EDITOR, False),
    (_case("public"), OTHER, False),  # submitted, not approved yet
    (_case("public"), EDITOR, True),  # editors review what was sent to moderation
    (_case("public", listed_public=True), OTHER, True),
    (_case("public", listed_public=True), ANONYMOUS, True),
])
def test_who_sees_a_case(case: dict[str, Any], viewer: Viewer, sees: bool) -> None:
    assert core.can_view(case, viewer) is sees


def test_an_anonymous_caller_is_never_taken_for_an_owner_without_id() -> None:
    assert not core.can_view({"owner_id": None, "visibility": "draft", "listed_public": False}, ANONYMOUS)


def test_only_owners_and_editors_see_the_text_under_review() -> None:
    case = _case("public", listed_public=True)
    assert core.sees_current_version(case, OWNER)
    assert core.sees_current_version(case, EDITOR)
    assert not core.sees_current_version(case, OTHER)
    assert not core.sees_current_version(case, ANONYMOUS)


@pytest.mark.parametrize(("status", "allowed"), [
    ("draft", True), ("unlisted", True), ("rejected", True), ("approved", True),
    ("submitted", False), ("in_review", False),
])
def test_which_statuses_may_be_published(status: str, allowed: bool) -> None:
    assert core.can_publish(status) is allowed


def test_limit_codes_name_the_visibility() -> None:
    assert core.limit_code("draft") == "draft_limit_reached"
    assert core.limit_code("unlisted") == "unlisted_limit_reached"


def _image(id: str, seq: int, series_uid: str | None = None, series_number: int | None = None,
           instance_number: int | None = None) -> dict[str, Any]:
    return {"id": id, "seq": seq, "series_uid": series_uid, "series_number": series_number,
            "instance_number": instance_number}


def test_series_order_by_number_and_images_by_instance_then_arrival() -> None:
    images = [
        _image("a3", 1, "1.2.A", 2, 3), _image("b1", 2, "1.2.B", 1, 1), _image("a1", 3, "1.2.A", 2, 1),
        _image("png", 4), _image("a-none", 5, "1.2.A", 2, None), _image("b2", 6, "1.2.B", 1, 2),
        _image("c", 7, "1.2.C", None, 1),
    ]
    ordered = [[i["id"] for i in group] for group in core.order_series(images)]
    # Numbered series first (1 before 2), then unnumbered ones in arrival order; a png is its own group.
    assert ordered == [["b1", "b2"], ["a1", "a3", "a-none"], ["png"], ["c"]]


def test_uploads_without_a_series_uid_form_their_own_groups() -> None:
    assert core.series_key(_image("x", 1)) == ("upload:x",)
    assert core.series_key(_image("x", 1, "1.2.3")) == ("1.2.3",)
    assert len(core.order_series([_image("x", 1), _image("y", 2)])) == 2
    assert core.order_series([]) == []


def test_fingerprint_is_stable_and_changes_with_the_content() -> None:
    a = {"case": "c1", "revision": 3, "images": ["i1", "i2"]}
    assert core.fingerprint(a) == core.fingerprint(dict(reversed(list(a.items()))))
    assert core.fingerprint(a) != core.fingerprint({**a, "revision": 4})
    assert len(core.fingerprint(a)) == 64


@pytest.mark.parametrize(("text", "bad"), [
    ("Plain text", False), ("two\nlines\r\n\tindented", False), ("Ünïcode – ok", False),
    ("nul\x00", True), ("bell\x07", True), ("del\x7f", True), ("c1\x85", True),
])
def test_control_characters(text: str, bad: bool) -> None:
    assert core.has_control_characters(text) is bad


@pytest.mark.parametrize(("status", "shown"), [
    ("draft", "not_submitted"), ("unlisted", "not_submitted"), ("submitted", "pending"), ("in_review", "in_review"),
    ("approved", "approved"), ("rejected", "rejected"),
])
def test_moderation_status_says_where_the_latest_submission_stands(status: str, shown: str) -> None:
    assert core.moderation_status(status) == shown


def test_every_case_status_has_a_moderation_status() -> None:
    from casebook_events.lifecycle import Status

    assert {core.moderation_status(s) for s in Status} == {"not_submitted", "pending", "in_review", "approved",
                                                           "rejected"}
