"""The automatic publication checks of moderation (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casebook_events import CaseSnapshot
from casebook_moderation import core
from casebook_platform.identifiers import identifier_digests

CASE = "c_unit"
GOOD: dict[str, Any] = {
    "title": "Osteoid osteoma", "presentation": "Night pain relieved by aspirin.", "patient_age": 15,
    "patient_sex": "male", "systems": ["musculoskeletal"], "diagnosis": "Osteoid osteoma",
    "diagnostic_certainty": "certain", "discussion": "Classic nidus with sclerosis; C5-C6 normal, 3 cm.",
    "findings": ["Lucent nidus in the femoral cortex on T2."],
}


def ready(image_id: str = "i1", **kw: Any) -> core.ImageState:
    return core.ImageState(image_id=image_id, status="ready", **kw)


def run(case: dict[str, Any] | None = None, image_ids: tuple[str, ...] = ("i1",),
        images: dict[str, core.ImageState] | None = None) -> list[core.Check] | None:
    snapshot = CaseSnapshot.model_validate({**GOOD, **(case or {})})
    return core.run_checks(CASE, snapshot, image_ids, images if images is not None else {"i1": ready()})


def failed_codes(checks: list[core.Check] | None) -> list[str]:
    assert checks is not None
    return [c.code for c in core.failures(checks)]


def test_a_good_case_passes_every_check_and_reports_each() -> None:
    checks = run()
    assert checks is not None and failed_codes(checks) == []
    assert [c.code for c in checks] == ["certainty_too_low", "system_missing", "age_missing", "sex_missing",
                                        "no_images", "image_quarantined", "burned_in_text", "identifier_in_text"]
    assert all(c.message for c in checks)


@pytest.mark.parametrize("certainty", ["probable", "possible", "not_applicable", None])
def test_certainty_below_almost_certain_fails(certainty: str | None) -> None:
    assert failed_codes(run({"diagnostic_certainty": certainty})) == ["certainty_too_low"]


def test_almost_certain_is_enough() -> None:
    assert failed_codes(run({"diagnostic_certainty": "almost_certain"})) == []


@pytest.mark.parametrize(("field", "value", "code"), [
    ("systems", [], "system_missing"), ("patient_age", None, "age_missing"), ("patient_sex", None, "sex_missing"),
])
def test_missing_metadata(field: str, value: Any, code: str) -> None:
    assert failed_codes(run({field: value})) == [code]


def test_sex_unknown_is_a_given_answer() -> None:
    assert failed_codes(run({"patient_sex": "unknown"})) == []


def test_no_images() -> None:
    assert failed_codes(run(image_ids=(), images={})) == ["no_images"]


def test_waits_while_an_image_is_processing() -> None:
    assert run(image_ids=("i1", "i2"), images={"i1": ready()}) is None


def test_images_outside_the_submission_do_not_hold_it_up() -> None:
    assert failed_codes(run(images={"i1": ready(), "old": core.ImageState("old", "quarantined")})) == []


def test_quarantined_image_fails_with_its_reasons() -> None:
    images = {"i1": ready(), "i2": core.ImageState("i2", "quarantined", reasons=("burned_in_text",))}
    checks = run(image_ids=("i1", "i2"), images=images)
    assert failed_codes(checks) == ["image_quarantined"]
    assert checks is not None
    assert "burned_in_text" in next(c for c in checks if c.code == "image_quarantined").message


def test_burned_in_text_flag_fails() -> None:
    checks = run(images={"i1": ready(flags=("burned_in_text_redacted",))})
    assert failed_codes(checks) == ["burned_in_text"]


def test_unrelated_flags_pass() -> None:
    assert failed_codes(run(images={"i1": ready(flags=("lossy_source",))})) == []


@pytest.mark.parametrize(("field", "text"), [
    ("presentation", "Seen on 12/03/2021 in clinic."),
    ("discussion", "Contact jane.doe@example.org for details."),
    ("title", "MRN 12345678 osteoma"),
    ("findings", ["Nidus.", "Call 0161 496 0000."]),
])
def test_identifier_in_text_names_the_field_not_the_value(field: str, text: Any) -> None:
    checks = run({field: text})
    assert failed_codes(checks) == ["identifier_in_text"]
    assert checks is not None
    message = next(c for c in checks if c.code == "identifier_in_text").message
    expected_field = "findings of study 2" if field == "findings" else field
    assert expected_field in message
    assert "12345678" not in message and "@" not in message and "2021" not in message


def test_identifier_digests_of_the_images_catch_names_in_text() -> None:
    digests = tuple(identifier_digests(CASE, names=["Jonathan Smithers"]))
    images = {"i1": ready(identifier_digests=digests)}
    assert failed_codes(run({"discussion": "Mr SMITHERS had pain."}, images=images)) == ["identifier_in_text"]
    assert failed_codes(run(images=images)) == []


def test_digests_are_salted_with_the_case_id() -> None:
    other_salt = tuple(identifier_digests("another_case", names=["Smithers"]))
    assert failed_codes(run({"discussion": "Smithers"}, images={"i1": ready(identifier_digests=other_salt)})) == []


def test_several_failures_are_all_reported_in_check_order() -> None:
    checks = run({"diagnostic_certainty": "possible", "systems": [], "presentation": "DOB 01/02/1990"},
                 images={"i1": ready(flags=("burned_in_text",))})
    assert failed_codes(checks) == ["certainty_too_low", "system_missing", "burned_in_text", "identifier_in_text"]


def test_claim_conflict() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    later, earlier = now + timedelta(minutes=5), now - timedelta(seconds=1)
    assert core.claim_conflict("ed1", later, "ed2", now)
    assert not core.claim_conflict("ed1", later, "ed1", now)
    assert not core.claim_conflict("ed1", earlier, "ed2", now)
    assert not core.claim_conflict(None, None, "ed2", now)


def _img(image_id: str, **kw: object) -> core.ImageState:
    base: dict[str, object] = {"status": "ready", "study_id": "s1", "modality": "CT", "series_uid": "2.25.1",
                               "rows": 512, "columns": 512, "frames": 1}
    return core.ImageState(image_id=image_id, **{**base, **kw})  # type: ignore[arg-type]


def test_quality_advice_is_quiet_for_a_good_stack() -> None:
    images = {f"i{n}": _img(f"i{n}") for n in range(3)}
    assert core.quality_advice(list(images), images) == []


def test_quality_advice_names_small_mixed_and_single_slice_images() -> None:
    images = {"a": _img("a", rows=128, columns=128, series_uid="2.25.9"), "b": _img("b", modality="MR"),
              "c": _img("c", modality="MR"), "d": _img("d", study_id="s2", modality="CR", series_uid="2.25.7"),
              "q": _img("q", status="quarantined", rows=10, columns=10)}
    advice = {a.code: a.image_ids for a in core.quality_advice(list(images), images)}
    assert list(advice) == ["image_too_small", "mixed_modalities", "single_slice"]
    assert advice["image_too_small"] == ("a",)  # the quarantined image is not published: no advice about it
    assert set(advice["mixed_modalities"]) == {"a", "b", "c"}
    assert advice["single_slice"] == ("a",)  # a radiograph (CR) is a single image by nature


def test_quality_advice_names_blank_images() -> None:
    images = {f"i{n}": _img(f"i{n}") for n in range(3)}
    images["i1"] = _img("i1", flags=("ocr_checked", "near_uniform"))
    advice = core.quality_advice(list(images), images)
    assert [(a.code, a.image_ids) for a in advice] == [("image_blank", ("i1",))]


def test_a_multiframe_series_is_a_stack() -> None:
    images = {"a": _img("a", frames=40)}
    assert core.quality_advice(["a"], images) == []
