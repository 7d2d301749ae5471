"""The gateway's pure editorial rules: readers' ages, completeness, frozen revisions and their diffs."""

from __future__ import annotations

from typing import Any

import pytest

from casebook_gateway import core
from casebook_gateway.schemas import CasePatch


@pytest.mark.parametrize(("age", "shown"), [(None, None), (0, 0), (7, 7), (17, 17), (18, 20), (22, 20), (23, 25),
                                            (47, 45), (48, 50), (84, 85), (88, 85), (89, 85), (90, "90+"),
                                            (104, "90+")])
def test_readers_see_an_adults_age_rounded_and_90_plus(age: int | None, shown: int | str | None) -> None:
    assert core.public_age(age) == shown


def _case(**over: Any) -> dict[str, Any]:
    base = {"title": "Osteoid osteoma", "presentation": "Night pain.", "patient_age": 15, "patient_sex": "male",
            "systems": ["musculoskeletal"], "tags": ["bone"], "diagnosis": "Osteoid osteoma",
            "diagnostic_certainty": "certain", "discussion": "Classic nidus."}
    return {**base, **over}


def test_a_complete_case_scores_100() -> None:
    studies = [{"id": "s1", "position": 1, "modality": "CT", "findings": "Nidus."}]
    assert core.completeness(_case(), studies, ready_images=1) == {"percent": 100, "missing": []}


def test_completeness_names_what_is_missing_in_form_order() -> None:
    studies = [{"id": "s1", "position": 1, "modality": "CT", "findings": "Nidus."},
               {"id": "s2", "position": 2, "modality": "MR", "findings": "  "}]
    got = core.completeness(_case(presentation="", patient_age=None, tags=[]), studies, ready_images=0)
    assert got["missing"] == ["presentation", "patient_age", "findings:study-2", "tags", "ready_image"]
    assert got["percent"] == round(100 * 4 / 9)  # 9 items: 4 of the case, 2 findings, discussion, tags, image
    assert core.completeness(_case(), [], ready_images=1)["missing"] == ["findings"]


def test_a_diff_names_fields_studies_and_images_added_and_removed() -> None:
    old = core.freeze(_case(), [{"id": "s1", "position": 1, "modality": "CT", "findings": "Nidus."}], ["i1", "i2"])
    new = core.freeze(_case(discussion="New."), [{"id": "s1", "position": 1, "modality": "CT", "findings": "Nidus!"},
                                                 {"id": "s2", "position": 2, "modality": "MR", "findings": ""}],
                      ["i2", "i3"])
    diff = core.revision_diff(old, new, base_revision=3)
    assert diff["base_revision"] == 3
    assert diff["fields"] == [{"field": "discussion", "before": "Classic nidus.", "after": "New."}]
    assert (diff["studies_added"], diff["studies_removed"], diff["studies_changed"]) == (["s2"], [], ["s1"])
    assert (diff["images_added"], diff["images_removed"]) == (["i3"], ["i1"])
    unchanged = core.revision_diff(new, new, base_revision=4)
    assert unchanged == {"base_revision": 4, "fields": [], "studies_added": [], "studies_removed": [],
                         "studies_changed": [], "images_added": [], "images_removed": []}


def test_a_first_submission_is_all_new() -> None:
    new = core.freeze(_case(), [], ["i1"])
    diff = core.revision_diff(None, new)
    assert [f["field"] for f in diff["fields"]] == list(core.TEXT_FIELDS)
    assert diff["images_added"] == ["i1"] and diff["base_revision"] is None


@pytest.mark.parametrize("field", ["title", "presentation", "systems", "tags", "diagnosis", "discussion"])
def test_a_patch_may_not_null_a_field_that_always_holds_a_value(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CasePatch.model_validate({field: None})


def test_a_patch_may_clear_the_optional_fields() -> None:
    patch = CasePatch.model_validate({"patient_age": None, "patient_sex": None, "diagnostic_certainty": None})
    assert patch.model_dump(exclude_unset=True) == {"patient_age": None, "patient_sex": None,
                                                    "diagnostic_certainty": None}
