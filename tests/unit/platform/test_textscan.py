"""The case-text identifier scanner and the identifier digests."""

from __future__ import annotations

from casebook_platform.identifiers import find_digested, identifier_digests
from casebook_platform.textscan import scan_text


def kinds(text: str) -> set[str]:
    return {f.kind for f in scan_text(text)}


def test_medical_text_is_not_flagged() -> None:
    for text in ["45-year-old man with a 3 cm lesion at C5-C6, T2 hyperintense.",
                 "Follow-up at 6 months showed 12 mm growth; ADC 0.8 x 10-3 mm2/s.",
                 "Grade 2 of 4 (WHO 2021 classification)."]:
        assert scan_text(text) == [], text


def test_identifiers_are_flagged() -> None:
    assert "date" in kinds("Scanned on 2021-03-04.")
    assert "date" in kinds("Scanned on 4 March 2021.")
    assert "mrn" in kinds("MRN: 12345678")
    assert "phone" in kinds("Call 020 7946 0958")
    assert "email" in kinds("mail j.doe@example.org")
    assert "address" in kinds("Lives at 221 Baker Street")
    assert "postcode" in kinds("NW1 6XE")


def test_known_identifiers_are_found_case_insensitively() -> None:
    found = scan_text("History from Mrs DOE-SMITH.", known_identifiers=["Doe-Smith"])
    assert [f.kind for f in found] == ["known_identifier"]


def test_digests_find_names_without_revealing_them() -> None:
    digests = identifier_digests("case-1", names=["Müller^Hans"], whole=["General Hospital"])
    assert all(len(d) == 64 for d in digests)
    assert find_digested("Patient Hans MULLER presented", "case-1", digests)
    assert find_digested("Seen at General Hospital", "case-1", digests) == ["general hospital"]
    assert find_digested("The hospital referred a general case", "case-1", digests) == []
    assert find_digested("Patient Hans presented", "case-2", digests) == []  # salted per case
