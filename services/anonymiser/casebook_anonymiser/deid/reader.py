"""Reading an upload: parse it, refuse partial or non-DICOM streams, and name its encoding."""

from __future__ import annotations

import warnings
from io import BytesIO
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from casebook_platform import media
from casebook_platform.media import Media

from .result import INVALID_DICOM, Quarantine

_UNDEFINED = 0xFFFFFFFF


def elements(ds: Dataset) -> dict[int, Any]:
    """The dataset's element map (tag -> raw or decoded element); BaseTag keys are plain ints."""
    return ds._dict  # type: ignore[return-value]


def _truncated(ds: Dataset, size: int) -> bool:
    """pydicom silently returns short values and stops at a partial element header; detect both."""
    meta = getattr(ds, "file_meta", None)
    # A deflated dataset's positions are in the inflated stream, not the file.
    deflated = meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    last_end = None
    elements: dict[int, Any] = ds._dict  # type: ignore[assignment]
    for elem in elements.values():
        if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED:
            last_end = None
            continue
        if elem.value is not None and len(elem.value) != elem.length:
            return True
        last_end = elem.value_tell + elem.length
        if last_end > size and not deflated:  # a deferred value (not read yet) runs past the end
            return True
    return last_end is not None and not deflated and last_end < size


def read_dataset(data: bytes) -> Dataset:
    """Parse DICOM bytes; a preamble-less stream must yield a real dataset to be accepted."""
    return _read(BytesIO(data), data[: media.HEAD_BYTES], len(data), defer=None)


def read_dataset_file(fp: BinaryIO, size: int, defer: int) -> Dataset:
    """Parse a DICOM file with every value larger than `defer` bytes left unread (value None, position kept).

    The same acceptance rules as `read_dataset`; the caller reads the deferred values it needs.
    """
    head = fp.read(media.HEAD_BYTES)
    fp.seek(0)
    return _read(fp, head, size, defer=defer)


def _read(fp: BinaryIO, head: bytes, size: int, defer: int | None) -> Dataset:
    has_preamble = media.sniff(head) is Media.DICOM
    try:
        # pydicom reports a truncated stream as a warning and returns what it got; a partial object
        # must not pass as a complete one, so that warning is promoted to a quarantine.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = dcmread(fp, force=not has_preamble, defer_size=defer)
        if any("end of file" in str(w.message).lower() for w in caught) or _truncated(ds, size):
            raise Quarantine(INVALID_DICOM, "truncated")
        if not has_preamble and ("SOPClassUID" not in ds or len(ds._dict) < 3):
            raise Quarantine(INVALID_DICOM, "no DICOM dataset found")
    except Quarantine:
        raise
    except Exception as exc:
        raise Quarantine(INVALID_DICOM, str(exc)) from exc
    return ds


def transfer_syntax(ds: Dataset) -> UID:
    """The syntax the dataset was really encoded with (the declared one unless it contradicts the bytes)."""
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    implicit, little = ds.original_encoding
    if implicit is None:
        implicit, little = True, True
    actual = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    if ts is None or not UID(ts).is_transfer_syntax:
        return actual
    ts = UID(ts)
    if ts.is_compressed or ts == DeflatedExplicitVRLittleEndian:
        return ts
    if (ts.is_implicit_VR, ts.is_little_endian) != (implicit, little):
        return actual
    return ts


def text_value(ds: Dataset, keyword: str) -> str:
    """An ASCII element's text without pydicom's conversion machinery ('' when absent)."""
    from pydicom.datadict import tag_for_keyword

    elem = elements(ds).get(int(tag_for_keyword(keyword) or 0))
    if elem is None:
        return ""
    value = elem.value
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \x00")
    return str(value if value is not None else "").strip(" \x00")
