"""The review queue's rules, pure: image reports merge fail-closed, stale submissions, closing a case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from casebook_events import CaseApproved, CaseRejected, Reason
from casebook_moderation.core import ImageState, closing, decision_event, is_stale, merge_report


def test_a_first_report_is_taken_as_it_is() -> None:
    new = ImageState("i1", "ready", flags=("burned_in_text_redacted",), modality="CT")
    assert merge_report(None, new) == new


def test_a_quarantine_is_final_and_keeps_its_reasons() -> None:
    old = ImageState("i1", "quarantined", reasons=("burned_in_text",), identifier_digests=("b",))
    merged = merge_report(old, ImageState("i1", "ready", identifier_digests=("a",), modality="CT"))
    assert merged.status == "quarantined" and merged.reasons == ("burned_in_text",)
    assert merged.identifier_digests == ("a", "b")  # digests accumulate, sorted
    assert merged.modality == "CT"


def test_a_later_quarantine_replaces_a_ready_report_with_its_own_reasons() -> None:
    old = ImageState("i1", "ready", study_id="s1", rows=512, columns=512)
    merged = merge_report(old, ImageState("i1", "quarantined", reasons=("processing_timeout",)))
    assert merged.status == "quarantined" and merged.reasons == ("processing_timeout",)
    assert (merged.study_id, merged.rows, merged.columns) == ("s1", 512, 512)  # facts the report omits are kept


@pytest.mark.parametrize(("state", "revision", "withdrawn", "incoming", "stale"), [
    ("checking", 2, 0, 3, False),  # a newer submission replaces the item
    ("waiting", 2, 0, 2, True),  # the same submission again
    ("approved", 3, 0, 2, True),  # an older one
    ("deleted", 0, 0, 9, True),  # nothing after a deletion
    ("withdrawn", 0, 5, 4, True),  # overtaken by a withdrawal at a later revision
    ("withdrawn", 0, 5, 5, False),  # submitted at the withdrawal's revision: a new submission
])
def test_stale_submissions(state: str, revision: int, withdrawn: int, incoming: int, stale: bool) -> None:
    assert is_stale(state, revision, withdrawn, incoming) is stale


def test_closing_a_case() -> None:
    released = {"claimed_by": None, "claim_expires_at": None}
    assert closing("approved", 3, 0, to="deleted", at=0) == {"state": "deleted", **released}
    assert closing("waiting", 3, 0, to="withdrawn", at=4) == {"state": "withdrawn", "withdrawn_revision": 4,
                                                              **released}
    # A decided case is not reopened, but the withdrawal is remembered for submissions it overtook.
    assert closing("approved", 3, 0, to="withdrawn", at=4) == {"withdrawn_revision": 4}
    assert closing("waiting", 3, 5, to="withdrawn", at=2) is None  # an older withdrawal changes nothing
    assert closing("deleted", 3, 0, to="withdrawn", at=9) is None


def test_a_decision_announces_an_approval_or_a_rejection_by_an_editor_or_the_checks() -> None:
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    item: dict[str, Any] = {"case_id": "c_1", "owner_id": "alice", "revision": 3, "title": "Osteoid osteoma",
                            "now": now}
    fix = [Reason(code="certainty_too_low", message="Give a certain or probable diagnosis.")]
    approved = decision_event(**item, approve=True, editor_id="erin", reasons=[])
    assert approved == CaseApproved(case_id="c_1", owner_id="alice", editor_id="erin", revision=3,
                                    title="Osteoid osteoma", approved_at=now)
    by_editor = decision_event(**item, approve=False, editor_id="erin", reasons=fix)
    assert isinstance(by_editor, CaseRejected) and not by_editor.automatic and by_editor.reasons == fix
    by_checks = decision_event(**item, approve=False, editor_id=None, reasons=fix)
    assert isinstance(by_checks, CaseRejected) and by_checks.automatic and by_checks.editor_id is None
    with pytest.raises(ValueError, match="editor"):
        decision_event(**item, approve=True, editor_id=None, reasons=[])
