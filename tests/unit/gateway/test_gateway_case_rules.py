"""The gateway core's rules behind the case routes: which fields an edit changes, the event of a change, and
what an image's de-identification report says."""

from __future__ import annotations

import json
from typing import Any

import pytest

from casebook_events import CaseUpdated
from casebook_gateway import core


def _case(**values: Any) -> dict[str, Any]:
    return {"id": "c_1", "owner_id": "alice", "revision": 4, "status": "submitted", "visibility": "public",
            "listed_public": True, "title": "Osteoid osteoma", "tags": ["bone"], "patient_age": 17, **values}


def test_an_edit_changes_only_the_fields_whose_value_differs_in_the_order_given() -> None:
    case = _case()
    assert core.changed_fields(case, {"tags": ["bone", "child"], "title": "Osteoid osteoma",
                                      "patient_age": 18}) == ["tags", "patient_age"]
    assert core.changed_fields(case, {"title": "Osteoid osteoma", "tags": ["bone"]}) == []
    assert core.changed_fields(case, {}) == []


def test_the_event_of_a_change_describes_the_case_as_it_now_stands() -> None:
    event = core.case_updated(_case(), ["title"])
    assert event == CaseUpdated(case_id="c_1", owner_id="alice", revision=4, status="submitted",
                                visibility="public", listed_public=True, changed=["title"])
    withdrawn = core.case_updated(_case(status="draft", visibility="draft", listed_public=False), ["visibility"])
    assert (withdrawn.status, withdrawn.visibility, withdrawn.listed_public, withdrawn.changed) == (
        "draft", "draft", False, ["visibility"])


def test_the_report_is_the_anonymisers_document_when_there_is_one() -> None:
    stored = json.dumps({"status": "ready", "kept": ["Modality"], "removed": ["PatientName"]}).encode()
    assert core.deid_report_document(stored, status="ready", reasons=[]) == {
        "status": "ready", "kept": ["Modality"], "removed": ["PatientName"]}


@pytest.mark.parametrize("stored", [None, b"[1, 2]", b'"quarantined"'])
def test_without_a_document_the_report_is_the_images_status_and_reasons(stored: bytes | None) -> None:
    assert core.deid_report_document(stored, status="quarantined", reasons=["burned_in_text"]) == {
        "status": "quarantined", "quarantine_reasons": ["burned_in_text"]}
    assert core.deid_report_document(stored, status="quarantined", reasons=None) == {
        "status": "quarantined", "quarantine_reasons": []}


def test_a_report_that_is_not_json_is_an_error_not_an_empty_report() -> None:
    with pytest.raises(ValueError):
        core.deid_report_document(b"{not json", status="ready", reasons=[])
