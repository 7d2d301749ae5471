"""Burned-in text: OCR finds text drawn into pixels and the result is redacted-and-verified or quarantined.

Uses the real RapidOCR models shipped in rapidocr-onnxruntime (no network).
"""

from __future__ import annotations

import warnings
from io import BytesIO

import numpy as np
import pydicom
import pytest
from deid_parity import both_paths
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, UltrasoundImageStorage, generate_uid

from casebook_anonymiser.deid import CaseKey, DeidResult, deidentify_file
from casebook_anonymiser.deid import ocr as ocr_mod

pytest.importorskip("rapidocr_onnxruntime")

TEXT = "JOHN SMITH 1234567"


def text_image(mode: str = "L") -> Image.Image:
    img = Image.new(mode, (512, 256), 0)
    draw = ImageDraw.Draw(img)
    draw.ellipse((150, 80, 360, 240), fill=(110 if mode == "L" else (110, 90, 90)))
    draw.text((16, 16), TEXT, fill=(255 if mode == "L" else (255, 255, 0)), font=ImageFont.load_default(size=40))
    return img


def assert_redacted_or_quarantined(result: DeidResult) -> None:
    if result.status == "quarantined":
        assert result.reasons == ["burned_in_text"]
        return
    assert "burned_in_text_redacted" in result.info["flags"]
    assert "ocr_checked" in result.info["flags"]


def dicom_with_text(sop_class: str, modality: str) -> bytes:
    img = np.asarray(text_image("L"))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = "Smith^John"
    ds.PatientID = "1234567"
    ds.StudyDate = "20200101"
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = img.tobytes()
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_png_with_burned_in_text(key: CaseKey) -> None:
    buf = BytesIO()
    text_image("RGB").save(buf, format="PNG")
    result = both_paths(buf.getvalue(), key)
    assert_redacted_or_quarantined(result)
    if result.status == "ready":
        assert result.data is not None
        assert result.media_type == "image/png"
        out = np.asarray(Image.open(BytesIO(result.data)))
        assert ocr_mod.find_text(out) == []
        assert out[16:50, 16:300].max() == 0  # the text area is blanked


@pytest.mark.parametrize(
    ("sop_class", "modality"), [(SecondaryCaptureImageStorage, "OT"), (UltrasoundImageStorage, "US")]
)
def test_dicom_with_burned_in_text(key: CaseKey, sop_class: str, modality: str) -> None:
    result = both_paths(dicom_with_text(sop_class, modality), key)
    assert_redacted_or_quarantined(result)
    if result.status == "ready":
        assert result.data is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(BytesIO(result.data))
        arr = ds.pixel_array
        assert ocr_mod.find_text(arr) == []
        assert arr[16:50, 16:300].max() == 0
        assert ds.SOPClassUID == sop_class
        assert b"smith" not in result.data.lower()


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_ct_mr_not_quarantined_with_ocr(key: CaseKey, name: str) -> None:
    result = deidentify_file(str(get_testdata_file(name)), key=key, ocr=True)
    assert result.status == "ready", result.reasons


def test_clean_secondary_capture_passes_ocr(key: CaseKey) -> None:
    ds = pydicom.dcmread(str(get_testdata_file("MR_small.dcm")))
    ds.Modality = "OT"
    buf = BytesIO()
    ds.save_as(buf)
    result = both_paths(buf.getvalue(), key)
    assert result.status == "ready", result.reasons
    assert "ocr_checked" in result.info["flags"]
    assert "burned_in_text_redacted" not in result.info["flags"]


def _exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x013B] = "Artemisia Photographer"  # Artist
    exif[0x010E] = "Patient Wobbleton knee"  # ImageDescription
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (51.0, 30.0, 12.0)
    gps[3] = "W"
    gps[4] = (0.0, 7.0, 40.0)
    return exif


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_gps_and_text_metadata_removed(key: CaseKey, fmt: str) -> None:
    img = Image.new("RGB", (320, 240), (40, 40, 40))
    ImageDraw.Draw(img).rectangle((100, 60, 220, 180), fill=(200, 180, 160))
    buf = BytesIO()
    kwargs: dict[str, object] = {"exif": _exif_with_gps()}
    if fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Comment", "Wobbleton Patient 555-0199")
        kwargs["pnginfo"] = info
    img.save(buf, format=fmt, **kwargs)
    data = buf.getvalue()
    assert b"Wobbleton" in data
    result = both_paths(data, key)
    assert result.status == "ready", result.reasons
    assert result.data is not None
    assert result.media_type == f"image/{fmt.lower()}"
    out = Image.open(BytesIO(result.data))
    assert not out.getexif()
    assert b"wobbleton" not in result.data.lower() and b"artemisia" not in result.data.lower()
    assert "Patient Wobbleton knee" in result.identifiers


def test_image_needs_ocr_fails_closed_without_it(key: CaseKey) -> None:
    buf = BytesIO()
    text_image().save(buf, format="PNG")
    result = both_paths(buf.getvalue(), key, ocr=False)
    assert result.status == "quarantined" and result.reasons == ["ocr_unavailable"]


def test_truncated_png_is_quarantined(key: CaseKey) -> None:
    buf = BytesIO()
    text_image().save(buf, format="PNG")
    result = both_paths(buf.getvalue()[:200], key)
    assert result.status == "quarantined" and result.reasons == ["invalid_image"]


def test_ocr_unavailable_engine_fails_closed(key: CaseKey, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ocr_mod.OcrUnavailable("models missing")

    monkeypatch.setattr(ocr_mod, "get_engine", broken)
    buf = BytesIO()
    text_image().save(buf, format="PNG")
    assert both_paths(buf.getvalue(), key).reasons == ["ocr_unavailable"]
    us = dicom_with_text(UltrasoundImageStorage, "US")
    assert both_paths(us, key).reasons == ["ocr_unavailable"]
