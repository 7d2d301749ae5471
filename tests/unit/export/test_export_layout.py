"""Portable names, the originals layout and the text of case.txt."""

from __future__ import annotations

import unicodedata

import pytest

from casebook_export.layout import (
    UnsupportedMediaType,
    case_text,
    export_filename,
    extension_for,
    originals_entries,
    safe_name,
)
from casebook_export.model import ExportCase, ExportImage, ExportSeries, ExportStudy

FORBIDDEN = set('<>:"/\\|?*') | {chr(c) for c in range(32)}


def _case(**overrides: object) -> ExportCase:
    ct_axial = ExportSeries(
        2,
        "Axial C+ portal venous",
        [ExportImage(f"ct{i}", f"c1/ct{i}", "application/dicom", 10) for i in range(3)],
    )
    ct_coronal = ExportSeries(1, "Coronal / MPR: 3mm?", [ExportImage("cor", "c1/cor", "application/dicom", 10)])
    xr = ExportSeries(1, "", [ExportImage("xr", "c1/xr", "image/png", 5), ExportImage("xj", "c1/xj", "image/jpeg", 5)])
    fields: dict[str, object] = {
        "case_id": "c1",
        "title": "Acute appendicitis",
        "presentation": "Right iliac fossa pain for 2 days.\nFever.",
        "patient_age": 23,
        "patient_sex": "female",
        "systems": ["Gastrointestinal"],
        "tags": ["appendix", "RIF pain"],
        "diagnosis": "Acute appendicitis",
        "diagnostic_certainty": "almost_certain",
        "discussion": "Classic imaging features.",
        "author_name": "Dr Ada Lovelace",
        "attribution": "",
        "licence": "CC BY-NC-SA 4.0",
        "studies": [
            ExportStudy(5, "CT", "Dilated appendix with fat stranding.", [ct_axial, ct_coronal]),
            ExportStudy(1, "X-ray", "Unremarkable.", [xr]),
        ],
    }
    fields.update(overrides)
    return ExportCase(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["CON", "con.txt", "Nul", "COM1", "lpt9.dcm", "AUX", "PRN", "COM¹"])
def test_windows_reserved_names_are_renamed(name: str) -> None:
    safe = safe_name(name)
    assert safe.startswith("_")
    assert safe[1:].split(".")[0].lower() in {"con", "nul", "com1", "lpt9", "aux", "prn"}


def test_forbidden_characters_are_replaced_and_control_characters_dropped() -> None:
    safe = safe_name('a<b>c:d"e/f\\g|h?i*j\x00k\x1fl\u202em')
    assert not FORBIDDEN & set(safe)
    assert "\u202e" not in safe  # a bidi override could disguise an extension
    assert safe == "a-b-c-d-e-f-g-h-i-jklm"


@pytest.mark.parametrize("name", ["..", ".", "...", " ", "", "///", "-"])
def test_empty_or_dot_only_names_fall_back(name: str) -> None:
    assert safe_name(name) == "untitled"
    assert safe_name(name, fallback="x") == "x"


def test_no_leading_or_trailing_dots_or_spaces() -> None:
    assert safe_name(" .hidden. ") == "hidden"
    assert safe_name("T2 axial.") == "T2-axial"


def test_unicode_is_normalised_and_length_capped_in_bytes() -> None:
    decomposed = "Le\u0301sion"  # e + combining acute accent
    assert safe_name(decomposed) == "Lésion"
    assert unicodedata.is_normalized("NFC", safe_name(decomposed))
    assert safe_name("ＣＴ") == "CT"  # full-width folded
    long = "é" * 200
    safe = safe_name(long, max_bytes=64)
    assert len(safe.encode("utf-8")) <= 64
    assert safe == "é" * 32  # never a split multi-byte character
    assert len(safe_name("x" * 1000).encode()) <= 64


def test_extensions_from_media_types() -> None:
    assert extension_for("application/dicom") == "dcm"
    assert extension_for("image/png") == "png"
    assert extension_for("IMAGE/JPEG; charset=binary") == "jpg"
    with pytest.raises(UnsupportedMediaType):
        extension_for("image/svg+xml")


def test_originals_layout_orders_by_position_and_numbers_by_rank() -> None:
    paths = [entry.path for entry in originals_entries(_case())]
    assert paths == [
        "study-1-X-ray/series-1-untitled/0001.png",
        "study-1-X-ray/series-1-untitled/0002.jpg",
        "study-2-CT/series-1-Coronal-MPR-3mm/0001.dcm",
        "study-2-CT/series-2-Axial-C+-portal-venous/0001.dcm",
        "study-2-CT/series-2-Axial-C+-portal-venous/0002.dcm",
        "study-2-CT/series-2-Axial-C+-portal-venous/0003.dcm",
    ]
    for path in paths:
        for part in path.split("/"):
            assert not FORBIDDEN & set(part)
            assert len(part.encode()) <= 64
        assert len(path) < 200


def test_originals_layout_rejects_unknown_media_before_yielding() -> None:
    bad = ExportSeries(1, "s", [ExportImage("a", "k", "application/pdf", 1)])
    case = _case(studies=[ExportStudy(1, "CT", "", [bad])])
    with pytest.raises(UnsupportedMediaType):
        list(originals_entries(case))


def test_export_filename() -> None:
    assert export_filename("Acute appendicitis: CT", ".zip") == "casebook-Acute-appendicitis-CT.zip"
    assert export_filename("", ".html") == "casebook-case.html"


def test_case_text_holds_every_field_licence_and_attribution() -> None:
    case = _case()
    text = case_text(case)
    for expected in [
        "Acute appendicitis",
        "Right iliac fossa pain for 2 days.\nFever.",
        "23 years, female",
        "Gastrointestinal",
        "appendix, RIF pain",
        "almost certain",
        "Classic imaging features.",
        "Dilated appendix with fat stranding.",
        "Unremarkable.",
        "Study 1: X-ray",
        "Study 2: CT",
        "Axial C+ portal venous (3 images)",
        "Licence: CC BY-NC-SA 4.0 (https://creativecommons.org/licenses/by-nc-sa/4.0/)",
        "Attribution: Case courtesy of Dr Ada Lovelace, Casebook, case c1",
    ]:
        assert expected in text
    assert text.index("Study 1: X-ray") < text.index("Study 2: CT")


def test_case_text_uses_the_given_attribution_and_default_licence() -> None:
    text = case_text(_case(attribution="Case courtesy of Dr X, Casebook rID 42", licence="", patient_age=None))
    assert "Attribution: Case courtesy of Dr X, Casebook rID 42" in text
    assert "Licence: CC BY-NC-SA 4.0" in text
    assert "Patient: female" in text


def test_case_text_strips_control_characters_and_normalises_newlines() -> None:
    text = case_text(_case(discussion="line one\r\nline two\x07\x1b[31m"))
    assert "line one\nline two[31m" in text
    assert "\r" not in text and "\x07" not in text and "\x1b" not in text
