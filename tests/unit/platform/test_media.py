"""The one media sniffer: content decides, never the name; every kind has one media type."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from casebook_platform.media import HEAD_BYTES, MEDIA_TYPES, PIL_FORMATS, Media, media_type, sniff


def _raster(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format=fmt)
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.dcm", b"x")
    return buf.getvalue()


def _empty_zip() -> bytes:
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    return buf.getvalue()


@pytest.mark.parametrize(("data", "kind"), [
    (b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00", Media.DICOM),
    (b"MZ" + b"\x90" * 126 + b"DICM", Media.DICOM),  # a polyglot preamble is still DICOM (the gateway zeroes it)
    (b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100", Media.DICOM_WITHOUT_PREAMBLE),
    (b"\x02\x00\x00\x00UL\x04\x00\x00\x00\x00\x00", Media.DICOM_WITHOUT_PREAMBLE),
    (_raster("PNG"), Media.PNG),
    (_raster("JPEG"), Media.JPEG),
    (_zip(), Media.ZIP),
    (_empty_zip(), Media.ZIP),
    (b"", Media.UNKNOWN),
    (b"GIF89a" + b"\x00" * 20, Media.UNKNOWN),
    (b"\x08\x00", Media.UNKNOWN),  # too short to be taken for a tag
    (b"%PDF-1.7\n", Media.UNKNOWN),
])
def test_sniff(data: bytes, kind: Media) -> None:
    assert sniff(data[:HEAD_BYTES]) is kind
    assert sniff(data) is kind


def test_kinds_compare_as_the_strings_services_use() -> None:
    assert sniff(_raster("PNG")) == "png" and sniff(_zip()) == "zip"


def test_every_kind_has_a_media_type_and_rasters_a_pillow_format() -> None:
    assert set(MEDIA_TYPES) == set(Media)
    assert media_type(Media.DICOM) == media_type(Media.DICOM_WITHOUT_PREAMBLE) == "application/dicom"
    assert media_type(Media.PNG) == "image/png" and media_type(Media.JPEG) == "image/jpeg"
    for kind, fmt in PIL_FORMATS.items():
        assert Image.open(io.BytesIO(_raster(fmt))).format == fmt
        assert sniff(_raster(fmt)) is kind
