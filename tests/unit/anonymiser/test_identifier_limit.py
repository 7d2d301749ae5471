"""`case.anonymised` carries one salted digest per identifying word of its input, so their number is bounded.

A real DICOM file whose header names more people than the event may list (a crafted file: a sequence of
thousands of operators) is quarantined `too_many_identifiers` by the service rather than published with a
list that could outgrow the event's stated size; an ordinary file stays far below the limit.
"""

from __future__ import annotations

from pathlib import Path

from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from casebook_anonymiser import core
from casebook_anonymiser.deid import CaseKey, deidentify_file
from casebook_anonymiser.deid.result import REASON_CODES, TOO_MANY_IDENTIFIERS
from casebook_anonymiser.worker import Outcome
from casebook_events.limits import MAX_IDENTIFIER_DIGESTS


def _crowded(path: Path, people: int) -> Path:
    """A small valid CT image whose header lists `people` other names of its patient."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "CT", "Doe^Jane", "MRN0001"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(8 * 8 * 2)
    ds.OtherPatientNames = [f"Surname{i:05d}^Given{i:05d}" for i in range(people)]
    dcmwrite(path, ds, enforce_file_format=True)
    return path


def test_an_ordinary_file_is_far_below_the_limit(key: CaseKey) -> None:
    result = deidentify_file(get_testdata_file("CT_small.dcm"), key=key, ocr=True)
    digests = core.digests_of(key.case_id, result.identifiers)
    assert result.status == "ready" and digests
    assert core.digests_fit(digests) and len(digests) < MAX_IDENTIFIER_DIGESTS // 20


def test_a_file_naming_thousands_of_people_does_not_fit(tmp_path: Path, key: CaseKey) -> None:
    result = deidentify_file(_crowded(tmp_path / "crowded.dcm", 1_000), key=key, ocr=True)
    digests = core.digests_of(key.case_id, result.identifiers)
    # Each name gives its whole run and each of its two words: three digests a person.
    assert len(digests) > MAX_IDENTIFIER_DIGESTS
    assert not core.digests_fit(digests)
    assert TOO_MANY_IDENTIFIERS in REASON_CODES


def test_the_limit_is_inclusive() -> None:
    assert core.digests_fit(["a" * 64] * MAX_IDENTIFIER_DIGESTS)
    assert not core.digests_fit(["a" * 64] * (MAX_IDENTIFIER_DIGESTS + 1))


def test_a_patients_surname_alone_has_a_digest(key: CaseKey) -> None:
    """Names come back in PN form, so moderation's text check finds a surname written without the given name."""
    from casebook_platform.identifiers import digest, find_digested

    result = deidentify_file(get_testdata_file("CT_small.dcm"), key=key, ocr=True)  # CompressedSamples^CT1
    digests = core.digests_of(key.case_id, result.identifiers)
    assert digest(key.case_id, "compressedsamples") in digests
    assert find_digested("Seen by Dr X; compressedsamples was well.", key.case_id, digests) == ["compressedsamples"]


def test_a_ready_result_whose_digests_do_not_fit_is_announced_quarantined() -> None:
    ready = Outcome(status="ready", reasons=[], media_type="application/dicom", info={"actions": ["uids"]},
                    identifiers=["Doe^Jane"], size=100, sha256="ab" * 32)
    fits, crowded = ["a" * 64] * MAX_IDENTIFIER_DIGESTS, ["a" * 64] * (MAX_IDENTIFIER_DIGESTS + 1)
    assert core.announced(ready, fits) is ready
    out = core.announced(ready, crowded)
    assert (out.status, out.reasons, out.media_type, out.info) == (
        "quarantined", [TOO_MANY_IDENTIFIERS], "application/dicom", {"actions": ["uids"]})
    assert out.size is None and out.sha256 is None  # nothing of the file is announced


def test_a_quarantined_result_keeps_its_own_reasons_however_many_identifiers() -> None:
    refused = Outcome(status="quarantined", reasons=["burned_in_text"], media_type="application/dicom")
    assert core.announced(refused, ["a" * 64] * (MAX_IDENTIFIER_DIGESTS + 1)) is refused
