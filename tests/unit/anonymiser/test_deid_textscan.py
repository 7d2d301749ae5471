"""scan_text: identifiers in case prose are found, radiology language is left alone."""

from __future__ import annotations

import itertools

import pytest

from casebook_anonymiser.deid import TextFinding, scan_text


def kinds(text: str, known: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(f.kind, f.excerpt) for f in scan_text(text, known_identifiers=known)]


@pytest.mark.parametrize(
    "text",
    [
        "T2 hyperintense lesion 3 cm in the left frontal lobe.",
        "5 mm nodule, C5-C6 disc protrusion, L4/5 and T1 FLAIR sequences.",
        "A 45-year-old man with a 2.5 x 3.1 cm mass; BP 120/80; grade 3/4.",
        "Follow-up in 2019 showed 10/12 ribs intact, 1.5T MRI, 64-slice CT, b=1000.",
        "Dr review recommended; lesion measured 12 x 8 x 6 mm at 3 o'clock.",
        "ADC 0.8 x 10-3 mm2/s, SUVmax 12.4, HU 45, 300 mg/kg, 120 kVp, 250 mAs.",
    ],
)
def test_normal_medical_text_is_not_flagged(text: str) -> None:
    assert scan_text(text) == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Seen on 12/03/2021 in clinic", "date"),
        ("scan 2021-03-12 showed", "date"),
        ("on 3rd March 2021 the", "date"),
        ("on March 3, 2021 the", "date"),
        ("dated 20210312 in PACS", "date"),
        ("admitted Jan 2020", "date"),
        ("MRN 1234567 on file", "mrn"),
        ("hospital id A1234567", "mrn"),
        ("call 020 7946 0958 today", "phone"),
        ("call +1 (555) 123-4567 today", "phone"),
        ("mail jane.doe@example.org now", "email"),
        ("lives at 221B Baker Street", "address"),
        ("postcode NW1 6XE", "postcode"),
        ("Boston MA 02115 resident", "postcode"),
        ("zip 12345-6789", "postcode"),
    ],
)
def test_identifiers_are_found(text: str, kind: str) -> None:
    assert kind in [f.kind for f in scan_text(text)], kinds(text)


def test_known_identifiers_case_insensitive_word_bounded() -> None:
    text = "Images of SMITH, John were reviewed; Smithfield is unrelated."
    found = scan_text(text, known_identifiers=["Smith", "John"])
    assert [(f.kind, f.excerpt) for f in found] == [("known_identifier", "SMITH"), ("known_identifier", "John")]
    assert all(isinstance(f, TextFinding) for f in found)
    f = found[0]
    assert text[f.start : f.end] == "SMITH"


def test_short_known_identifiers_ignored() -> None:
    assert scan_text("the CT of a", known_identifiers=["a", "CT", ""]) == []


def test_findings_do_not_overlap() -> None:
    found = scan_text("MRN: 12345678 phone 07700 900123")
    spans = sorted((f.start, f.end) for f in found)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
