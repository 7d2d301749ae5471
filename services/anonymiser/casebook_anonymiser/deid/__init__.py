"""Casebook de-identification core (DICOM PS3.15 Annex E, PNG/JPEG, case text).

Entry points never raise for bad input: every failure becomes a quarantined ``DeidResult`` with a
stable reason code, because an exception that escapes could let a caller store the raw upload.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .keys import CaseKey
from .result import PROCESSING_ERROR, UNSUPPORTED_MEDIA, DeidResult, Quarantine, quarantined
from .textscan import TextFinding, scan_text

__all__ = [
    "CaseKey",
    "DeidResult",
    "TextFinding",
    "deidentify_bytes",
    "deidentify_file",
    "scan_text",
    "sniff_media",
]

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# First tag of a preamble-less DICOM stream is usually in group 0002 (meta) or 0008 (identifying).
_DICOM_FIRST_GROUPS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def sniff_media(data: bytes) -> str:
    """Classify by content, never by file name: 'dicom', 'dicom?' (no preamble), 'PNG', 'JPEG' or ''."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if len(data) >= 8 and data[:2] in _DICOM_FIRST_GROUPS:
        return "dicom?"
    return ""


def deidentify_bytes(data: bytes, *, key: CaseKey, ocr: bool = True) -> DeidResult:
    """De-identify one uploaded object; see the package docstring for the failure contract."""
    kind = sniff_media(data)
    media_type = {"PNG": "image/png", "JPEG": "image/jpeg"}.get(kind, "application/dicom")
    try:
        if kind in ("dicom", "dicom?"):
            from .dicom import deidentify_dicom

            return deidentify_dicom(data, key, ocr)
        if kind in ("PNG", "JPEG"):
            from .raster import deidentify_raster

            return deidentify_raster(data, kind, ocr)
        return quarantined(UNSUPPORTED_MEDIA, "application/octet-stream")
    except Quarantine as q:
        log.info("quarantined: %s", q.reason)
        return quarantined(q.reason, media_type)
    except MemoryError:
        return quarantined(PROCESSING_ERROR, media_type)
    except Exception:  # fail closed: nothing leaves without passing every check
        log.exception("de-identification failed")
        return quarantined(PROCESSING_ERROR, media_type)


def deidentify_file(path: str | os.PathLike[str], *, key: CaseKey, ocr: bool = True) -> DeidResult:
    try:
        data = Path(path).read_bytes()
    except OSError:
        log.warning("cannot read input file")
        return quarantined(PROCESSING_ERROR, "application/octet-stream")
    return deidentify_bytes(data, key=key, ocr=ocr)
