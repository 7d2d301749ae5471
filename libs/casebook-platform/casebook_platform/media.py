"""The one media sniffer: what an object is, from its first bytes (never its name), and its media type.

The gateway decides what to accept with it and the anonymiser decides how to de-identify with it, so an
upload is never recognised as one thing at the door and another one behind it.
"""

from __future__ import annotations

from enum import StrEnum

HEAD_BYTES = 132  # a DICOM preamble (128) and its `DICM` marker (4): enough for every kind below

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end record
DICM_OFFSET = 128
# A DICOM stream written without preamble starts with a tag of the meta (0002) or identifying (0008) group,
# in either byte order.
_DICOM_FIRST_GROUPS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


class Media(StrEnum):
    """What a sniffed object is."""

    DICOM = "dicom"
    # No preamble and no `DICM` marker, but the first tag looks like DICOM: the anonymiser still tries to
    # read it (and fails closed); the gateway refuses such uploads.
    DICOM_WITHOUT_PREAMBLE = "dicom_without_preamble"
    ZIP = "zip"
    PNG = "png"
    JPEG = "jpeg"
    UNKNOWN = "unknown"


MEDIA_TYPES: dict[Media, str] = {
    Media.DICOM: "application/dicom",
    Media.DICOM_WITHOUT_PREAMBLE: "application/dicom",
    Media.ZIP: "application/zip",
    Media.PNG: "image/png",
    Media.JPEG: "image/jpeg",
    Media.UNKNOWN: "application/octet-stream",
}
# Pillow's format names of the raster kinds (what `Image.save(format=...)` and `Image.format` use).
PIL_FORMATS: dict[Media, str] = {Media.PNG: "PNG", Media.JPEG: "JPEG"}


def sniff(head: bytes) -> Media:
    """What the first bytes (at least `HEAD_BYTES` of them when there are that many) say the content is."""
    if len(head) >= DICM_OFFSET + 4 and head[DICM_OFFSET:DICM_OFFSET + 4] == b"DICM":
        return Media.DICOM
    if head.startswith(ZIP_MAGICS):
        return Media.ZIP
    if head.startswith(PNG_MAGIC):
        return Media.PNG
    if head.startswith(JPEG_MAGIC):
        return Media.JPEG
    if len(head) >= 8 and head[:2] in _DICOM_FIRST_GROUPS:
        return Media.DICOM_WITHOUT_PREAMBLE
    return Media.UNKNOWN


def media_type(kind: Media) -> str:
    """The media type of a sniffed kind (`application/dicom`, `image/png`, ...)."""
    return MEDIA_TYPES[kind]
