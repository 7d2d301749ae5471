"""The case lifecycle rules of the schema library: statuses, who may decide, the revision rule."""

from __future__ import annotations

import pytest

from casebook_events import lifecycle
from casebook_events.lifecycle import Status, Visibility


def test_status_names_are_the_contracts() -> None:
    assert [s.value for s in Status] == ["draft", "unlisted", "submitted", "in_review", "approved", "rejected"]
    assert [v.value for v in Visibility] == ["draft", "unlisted", "public"]
    assert {"submitted", "in_review"} == lifecycle.UNDER_REVIEW


@pytest.mark.parametrize(("status", "ok"), [("draft", True), ("unlisted", True), ("rejected", True),
                                            ("approved", True), ("submitted", False), ("in_review", False)])
def test_what_may_be_submitted(status: str, ok: bool) -> None:
    assert lifecycle.can_submit(status) is ok


def test_edits_resubmit_cases_in_or_through_moderation_only() -> None:
    assert [s for s in Status if lifecycle.resubmits_on_edit(s)] == ["submitted", "in_review", "approved"]


def test_a_rejection_returns_a_never_approved_case_as_a_draft() -> None:
    assert lifecycle.after_rejection(False) == ("rejected", "draft")
    assert lifecycle.after_rejection(True) == ("approved", "public")  # the published revision stays public


def test_editors_never_decide_their_own_cases() -> None:
    assert not lifecycle.may_decide("ed", "ed")
    assert lifecycle.may_decide("ed", "alice")


@pytest.mark.parametrize(("revision_status", "applies"), [
    ("submitted", True), ("superseded", True), ("withdrawn", False), ("approved", False), ("rejected", False),
    ("pending", False)])
def test_a_decision_applies_to_a_submitted_revision_or_one_it_raced_with(revision_status: str, applies: bool) -> None:
    assert lifecycle.decision_applies(revision_status) is applies


def test_newer_revision_wins_and_deletion_is_final() -> None:
    assert lifecycle.newer_wins(3, 4, deleted=False)
    assert lifecycle.newer_wins(3, 3, deleted=False)  # a redelivery is applied again harmlessly
    assert not lifecycle.newer_wins(4, 3, deleted=False)
    assert not lifecycle.newer_wins(3, 9, deleted=True)


def test_limits() -> None:
    assert lifecycle.over_limit(10, 10) and not lifecycle.over_limit(9, 10)
    assert {"draft", "unlisted"} == lifecycle.LIMITED
