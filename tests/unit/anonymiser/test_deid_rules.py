"""Profile rules: dates, ages, UIDs, method codes, private allow-list, descriptors, fail-closed input."""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from io import BytesIO

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from casebook_anonymiser.deid import CaseKey, DeidResult, deidentify_bytes, deidentify_file
from casebook_anonymiser.deid.dates import band_age, shift_da, shift_dt
from casebook_anonymiser.deid.keys import DATE_OFFSET_MAX, DATE_OFFSET_MIN
from casebook_anonymiser.deid.profile import load_table


def _ct() -> Dataset:
    return pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))


def _run(ds: Dataset, key: CaseKey, ocr: bool = True) -> tuple[DeidResult, Dataset]:
    """De-identify ``ds``; the result's ``data`` is guaranteed non-None."""
    buf = BytesIO()
    ds.save_as(buf)
    result = deidentify_bytes(buf.getvalue(), key=key, ocr=ocr)
    assert result.status == "ready", result.reasons
    assert result.data is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return result, pydicom.dcmread(BytesIO(result.data))


def _shifted(yyyymmdd: str, key: CaseKey) -> str:
    d = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    return (d + timedelta(days=key.date_offset_days)).strftime("%Y%m%d")


# --- table -----------------------------------------------------------------------------------


def test_table_is_generated_data_with_source() -> None:
    table = load_table()
    assert table.edition >= "2024b"
    assert table.source["package"] == "dicom-anonymizer"
    assert len(table.exact) > 600
    assert table.action_for(0x00100010) is not None
    assert table.action_for(0x00080018) == "U"
    assert table.action_for(0x60223000) == "X"  # masked row (60xx,3000)


# --- keys ------------------------------------------------------------------------------------


def test_case_key_derivations_are_keyed_and_stable(key: CaseKey, other_case_key: CaseKey) -> None:
    assert DATE_OFFSET_MIN <= key.date_offset_days <= DATE_OFFSET_MAX
    assert key.date_offset_days == CaseKey(key.secret, "x", key.case_id).date_offset_days
    assert key.pseudonym != other_case_key.pseudonym
    other_secret = CaseKey(b"another-secret-0123456789", key.key_id, key.case_id)
    assert other_secret.uid("1.2.3") != key.uid("1.2.3")
    assert key.uid("1.2.3") == other_case_key.uid("1.2.3")  # same secret → linked follow-ups
    assert key.uid("1.2.3").startswith("2.25.") and len(key.uid("1.2.3")) <= 64
    assert "secret" not in repr(key) and "test-secret" not in repr(key)
    with pytest.raises(ValueError):
        CaseKey(b"short", "k", "c")


# --- dates, times, ages ----------------------------------------------------------------------


def test_date_helpers() -> None:
    assert shift_da("20200301", -1) == "20200229"
    assert shift_da("2004.01.19", -365) == "20030119"  # legacy ACR-NEMA form
    assert shift_da("2020-03-01", -1) is None
    assert shift_da("garbage", -1) is None
    assert shift_dt("20200301123000.123456+0100", -1) == "20200229123000.123456+0100"
    assert shift_dt("2020", -400) == "2018"
    assert shift_dt("202003", -1) == "202002"


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        ("047Y", "045Y"),
        ("045Y", "045Y"),
        ("018Y", "015Y"),
        ("089Y", "085Y"),
        ("090Y", "090Y"),
        ("093Y", "090Y"),
        ("017Y", "017Y"),
        ("006M", "006M"),
        ("003W", "003W"),
        ("010D", "010D"),
        ("47", None),
    ],
)
def test_age_banding(age: str, expected: str | None) -> None:
    assert band_age(age) == expected


def test_dates_shifted_times_kept_legacy_parsed(key: CaseKey) -> None:
    ds = _ct()
    ds.StudyDate = "2004.01.19"
    ds.SeriesDate = "20040119"
    ds.StudyTime = "101530.25"
    ds.AcquisitionDateTime = "20040119101530.250000+0100"
    ds.PatientAge = "093Y"
    ds.PatientSex = "F"
    ds.PatientWeight = "71.5"
    ds.PatientBirthDate = "19110101"
    result, out = _run(ds, key)
    assert out.StudyDate == _shifted("20040119", key)
    assert out.SeriesDate == _shifted("20040119", key)
    assert out.StudyTime == "101530.25"
    assert out.AcquisitionDateTime == _shifted("20040119", key) + "101530.250000+0100"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert out.PatientAge == "090Y"
    assert out.PatientSex == "F"
    assert float(out.PatientWeight) == 71.5
    assert "PatientBirthDate" not in out
    assert result.data is not None
    assert b"20040119" not in result.data and b"19110101" not in result.data
    assert "dates_shifted" in result.info["flags"]


def test_unparseable_date_is_not_kept(key: CaseKey) -> None:
    ds = _ct()
    ds.StudyDate = "19-01-2004"
    _, out = _run(ds, key)
    assert out.get("StudyDate", "") in ("", None)


# --- UIDs ------------------------------------------------------------------------------------


def test_uid_references_consistent_across_files(key: CaseKey) -> None:
    first = _ct()
    second = _ct()
    second.SOPInstanceUID = first.SOPInstanceUID + ".2"
    ref = Dataset()
    ref.ReferencedSOPClassUID = first.SOPClassUID
    ref.ReferencedSOPInstanceUID = first.SOPInstanceUID
    second.ReferencedImageSequence = [ref]
    r1, o1 = _run(first, key)
    _, o2 = _run(second, key)
    assert o1.SeriesInstanceUID == o2.SeriesInstanceUID != first.SeriesInstanceUID
    assert o1.StudyInstanceUID == o2.StudyInstanceUID != first.StudyInstanceUID
    assert o1.FrameOfReferenceUID == o2.FrameOfReferenceUID
    assert o1.SOPInstanceUID != o2.SOPInstanceUID
    # References to other images are not on the allow-list: a teaching image does not need them.
    assert "ReferencedImageSequence" not in o2
    for o in (o1, o2):
        assert o.file_meta.MediaStorageSOPInstanceUID == o.SOPInstanceUID
        assert o.SOPClassUID == first.SOPClassUID == o.file_meta.MediaStorageSOPClassUID
        assert o.file_meta.TransferSyntaxUID == first.file_meta.TransferSyntaxUID
    assert r1.info["series_uid"] == o1.SeriesInstanceUID
    assert r1.info["study_uid"] == o1.StudyInstanceUID


# --- method, pseudonyms, descriptors ---------------------------------------------------------


def test_method_code_sequence_and_pseudonyms(key: CaseKey) -> None:
    result, out = _run(_ct(), key)
    assert out.PatientIdentityRemoved == "YES"
    assert any("key:test-key-1" in m for m in out.DeidentificationMethod)
    codes = [(i.CodeValue, i.CodingSchemeDesignator) for i in out.DeidentificationMethodCodeSequence]
    assert codes == [("113100", "DCM"), ("113106", "DCM"), ("113108", "DCM"), ("113105", "DCM"), ("113103", "DCM")]
    assert out.PatientName == key.patient_name and str(out.PatientName).startswith("CASEBOOK^")
    assert out.PatientID == key.patient_id
    assert str(out.file_meta.ImplementationVersionName).startswith("CASEBOOK")
    assert result.info["modality"] == "CT" and result.info["rows"] == 128 and result.info["frames"] == 1
    assert "CompressedSamples^CT1" not in str(out.PatientName)
    assert "CompressedSamples" in " ".join(result.identifiers)


def test_clean_descriptors(key: CaseKey) -> None:
    ds = _ct()
    ds.PatientName = "Grimsby^Harold"
    ds.SeriesDescription = "AX T2 FLAIR 5mm"
    ds.StudyDescription = "Grimsby follow-up head"
    ds.ProtocolName = "Head 12/03/2021"
    ds.ImageComments = "Patient Harold anxious"
    result, out = _run(ds, key)
    assert out.SeriesDescription == "AX T2 FLAIR 5mm"
    assert result.info["series_description"] == "AX T2 FLAIR 5mm"
    # Rebuilt from the imaging vocabulary: names, dates and other words are gone.
    assert out.StudyDescription == "head"
    assert out.ProtocolName == "Head"
    assert "ImageComments" not in out
    assert result.data is not None
    assert b"grimsby" not in result.data.lower() and b"harold" not in result.data.lower()


def test_graphics_and_overlays_removed(key: CaseKey) -> None:
    ds = _ct()
    ds.add_new(0x60020022, "LO", "Overlay by Smithers")
    ds.add_new(0x50000030, "SH", "CURVE")
    ann = Dataset()
    ann.GraphicLayer = "LAYER1"
    ds.GraphicAnnotationSequence = [ann]
    _, out = _run(ds, key)
    assert all((e.tag.group & 0xFF00) not in (0x5000, 0x6000) for e in out.iterall())
    assert "GraphicAnnotationSequence" not in out


# --- private elements ------------------------------------------------------------------------


def test_private_tags_removed_except_allow_list(key: CaseKey) -> None:
    ds = pydicom.dcmread(str(get_testdata_file("MR_small.dcm")))
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0C, "IS", "1000")  # B_value: allow-listed and numeric
    block.add_new(0x0D, "LO", "Wobblesworth")  # not allow-listed
    other = ds.private_block(0x0021, "ACME PRIVATE", create=True)
    other.add_new(0x01, "LO", "Wobblesworth secret")
    text_in_allowed = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
    text_in_allowed.add_new(0x39, "LO", "Wobblesworth")  # allow-listed slot but not numeric
    result, out = _run(ds, key)
    kept = out.private_block(0x0019, "SIEMENS MR HEADER")
    assert kept[0x0C].value == 1000
    assert kept.get_tag(0x0D) not in out
    private = [e for e in out.iterall() if e.tag.group & 1]
    assert {e.tag.group for e in private} == {0x0019}
    assert result.data is not None
    assert b"wobblesworth" not in result.data.lower()
    codes = [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert "113111" in codes
    assert "private_retained" in result.info["flags"]


# --- burned-in flag, OCR requirement ---------------------------------------------------------


def test_burned_in_annotation_yes_is_quarantined(key: CaseKey) -> None:
    ds = _ct()
    ds.BurnedInAnnotation = "YES"
    buf = BytesIO()
    ds.save_as(buf)
    result = deidentify_bytes(buf.getvalue(), key=key, ocr=True)
    assert result.status == "quarantined" and result.reasons == ["burned_in_text"]
    assert result.data is None


def test_ocr_required_but_disabled_is_quarantined(key: CaseKey) -> None:
    ds = _ct()
    buf = BytesIO()
    ds.save_as(buf)
    # Every image gets the text check, whatever its modality: without it nothing leaves.
    result = deidentify_bytes(buf.getvalue(), key=key, ocr=False)
    assert result.reasons == ["ocr_unavailable"]


# --- fail closed -----------------------------------------------------------------------------


def test_garbage_is_unsupported(key: CaseKey) -> None:
    for data in (b"", b"hello world, not an image", bytes(range(256)) * 4):
        result = deidentify_bytes(data, key=key)
        assert result.status == "quarantined" and result.reasons == ["unsupported_media"]


def test_garbage_after_dicm_prefix_is_invalid(key: CaseKey) -> None:
    result = deidentify_bytes(b"\x00" * 128 + b"DICM" + b"\x13\x37" * 50, key=key)
    assert result.status == "quarantined" and result.reasons == ["invalid_dicom"]


@pytest.mark.parametrize("cut", [140, 400, 1500, 20000, 39000])
def test_truncated_dicom_is_quarantined(key: CaseKey, cut: int) -> None:
    with open(str(get_testdata_file("CT_small.dcm")), "rb") as fh:
        data = fh.read()[:cut]
    result = deidentify_bytes(data, key=key, ocr=True)
    assert result.status == "quarantined"
    assert result.reasons[0] in ("invalid_dicom", "unsupported_media")
    assert result.data is None


def test_preambleless_dataset_accepted_only_if_real(key: CaseKey) -> None:
    ds = _ct()
    buf = BytesIO()
    ds.save_as(buf)
    body = buf.getvalue()
    # Strip preamble + meta: pydicom can still read it with force, and it is a real dataset.
    meta_end = 132 + 12 + int.from_bytes(body[140:144], "little")
    result = deidentify_bytes(body[meta_end:], key=key, ocr=True)
    assert result.status == "ready", result.reasons
    fake = Dataset()
    fake.PatientName = "Only^Name"
    b2 = BytesIO()
    fake.save_as(b2, implicit_vr=True, little_endian=True)
    result = deidentify_bytes(b2.getvalue(), key=key, ocr=True)
    assert result.status == "quarantined" and result.reasons[0] in ("invalid_dicom", "unsupported_media")


def test_deidentify_file_and_missing_file(key: CaseKey, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = deidentify_file(str(get_testdata_file("MR_small.dcm")), key=key, ocr=True)
    assert result.status == "ready"
    missing = deidentify_file(tmp_path / "nope.dcm", key=key)
    assert missing.status == "quarantined"


def test_result_repr_hides_identifiers(key: CaseKey) -> None:
    result = deidentify_file(str(get_testdata_file("CT_small.dcm")), key=key, ocr=True)
    assert "CompressedSamples" not in repr(result)


def test_structure_check_detects_bad_framing_and_private_groups(key: CaseKey) -> None:
    from casebook_anonymiser.deid.allowlist import rules
    from casebook_anonymiser.deid.result import Quarantine
    from casebook_anonymiser.deid.verify import check_structure

    allowed = frozenset(rules()) | {0x00080100, 0x00080102, 0x00080104}

    def _verify_structure(data: bytes, start: int, _implicit: bool, _little: bool) -> None:
        check_structure(data, start, allowed)

    result = deidentify_file(str(get_testdata_file("MR_small.dcm")), key=key, ocr=True)
    assert result.data is not None
    data = result.data
    start = 132 + 12 + int.from_bytes(data[140:144], "little")
    _verify_structure(data, start, False, True)
    with pytest.raises(Quarantine):
        _verify_structure(data[:-3], start, False, True)
    private = b"\x09\x00\x10\x00LO\x04\x00ACME"  # (0009,0010) placed before the first element
    with pytest.raises(Quarantine):
        _verify_structure(data[:start] + private + data[start:], start, False, True)
