"""Casebook de-identification core (DICOM PS3.15 Annex E, PNG/JPEG, case text).

Entry points never raise for bad input: every failure becomes a quarantined ``DeidResult`` with a
stable reason code, because an exception that escapes could let a caller store the raw upload.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from casebook_platform import media
from casebook_platform.media import Media
from casebook_platform.textscan import TextFinding, scan_text

from .keys import CaseKey
from .pixels import FATAL
from .result import PROCESSING_ERROR, UNSUPPORTED_MEDIA, DeidResult, Quarantine, quarantined

__all__ = [
    "CaseKey",
    "DeidResult",
    "TextFinding",
    "deidentify_bytes",
    "deidentify_file",
    "deidentify_to_path",
    "scan_text",
    "sniff_media",
]

log = logging.getLogger(__name__)

def sniff_media(data: bytes) -> Media:
    """Classify by content, never by file name (the platform's one sniffer, shared with the gateway)."""
    return media.sniff(data[: media.HEAD_BYTES])


def deidentify_bytes(data: bytes, *, key: CaseKey, ocr: bool = True) -> DeidResult:
    """De-identify one uploaded object; see the package docstring for the failure contract."""
    kind = sniff_media(data)
    media_type = media.media_type(kind) if kind in media.PIL_FORMATS else "application/dicom"

    def run() -> DeidResult:
        if kind in (Media.DICOM, Media.DICOM_WITHOUT_PREAMBLE):
            from .dicom import deidentify_dicom

            return deidentify_dicom(data, key, ocr)
        if kind in media.PIL_FORMATS:
            from .raster import deidentify_raster

            return deidentify_raster(data, media.PIL_FORMATS[kind], ocr)
        return quarantined(UNSUPPORTED_MEDIA, "application/octet-stream")

    return _fail_closed(run, media_type)


def _fail_closed(run: Callable[[], DeidResult], media_type: str) -> DeidResult:
    try:
        return run()
    except Quarantine as q:
        log.info("quarantined: %s", q.reason)
        return quarantined(q.reason, media_type)
    except MemoryError:
        return quarantined(PROCESSING_ERROR, media_type)
    except BaseException as exc:  # fail closed: nothing leaves without passing every check
        if isinstance(exc, FATAL):  # (a Rust decoder's panic is a BaseException and lands here)
            raise
        log.exception("de-identification failed")
        return quarantined(PROCESSING_ERROR, media_type)


def deidentify_file(path: str | os.PathLike[str], *, key: CaseKey, ocr: bool = True) -> DeidResult:
    try:
        data = Path(path).read_bytes()
    except OSError:
        log.warning("cannot read input file")
        return quarantined(PROCESSING_ERROR, "application/octet-stream")
    return deidentify_bytes(data, key=key, ocr=ocr)


def deidentify_to_path(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, key: CaseKey,
                       ocr: bool = True, stream_min: int | None = None) -> DeidResult:
    """De-identify the file `src` into `dst`: a ready result's object is in `dst` (its `data` is None).

    DICOM inputs of at least `stream_min` bytes (default `stream.stream_min_bytes()`) are read through a
    memory map and written piece by piece (`stream`): the same rules, in about a frame of memory. A
    quarantined result leaves no `dst`. Never raises for bad input (see the package docstring).
    """
    from . import stream

    src, dst = Path(src), Path(dst)
    try:
        size = src.stat().st_size
        with open(src, "rb") as fp:
            head = fp.read(media.HEAD_BYTES)
    except OSError:
        log.warning("cannot read input file")
        return quarantined(PROCESSING_ERROR, "application/octet-stream")
    kind = media.sniff(head)
    limit = stream.stream_min_bytes() if stream_min is None else stream_min
    if kind in (Media.DICOM, Media.DICOM_WITHOUT_PREAMBLE) and size >= limit:
        result = _fail_closed(lambda: stream.deidentify_dicom_file(src, dst, key, ocr), "application/dicom")
    else:
        result = deidentify_file(src, key=key, ocr=ocr)
        if result.status == "ready" and result.data is not None:
            dst.write_bytes(result.data)
            result.data = None
    if result.status != "ready":
        dst.unlink(missing_ok=True)
    return result
