"""The gateway accepts every transfer syntax the de-identifier handles, Deflated Explicit VR included."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian

from casebook_gateway import ingest
from casebook_platform.errors import ApiError


def _deflated(tmp_path: Path) -> Path:
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    ds.save_as(path)
    return path


def test_deflated_file_is_accepted(tmp_path: Path) -> None:
    assert ingest.validate_dicom(_deflated(tmp_path)) == []


def test_truncated_deflated_file_is_refused(tmp_path: Path) -> None:
    path = _deflated(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ApiError) as exc:
        ingest.validate_dicom(path)
    assert exc.value.code == "invalid_dicom"
