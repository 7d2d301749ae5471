"""DICOM de-identification: read, one recursive pass of table look-ups, OCR if needed, write, verify.

Speed matters because every upload goes through here: the pass touches ``Dataset._dict`` directly
so elements that are kept stay as pydicom ``RawDataElement`` objects (never decoded, written back
byte-for-byte), and pixel data is not decoded unless the object needs an OCR check.
"""

from __future__ import annotations

import contextlib
import re
import struct
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from io import BytesIO
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom._dicom_dict import DicomDictionary
from pydicom.charset import python_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import PersonName

from . import ocr as ocr_mod
from .dates import band_age, date_variants, shift_da, shift_dt
from .keys import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, CaseKey
from .profile import (
    AGE,
    CLEAN,
    DUMMY,
    EMPTY,
    EMPTY_ALWAYS,
    IDENTIFYING_VRS,
    KEEP,
    METHOD_CODES,
    METHOD_TAGS,
    PSEUDO_ID,
    PSEUDO_NAME,
    REMOVE,
    SAFE_PRIVATE_CODE,
    STRICT_TAGS,
    TEXT_IDENTIFIER_TAGS,
    UID_KEEP,
    load_private_allowlist,
    load_table,
)
from .result import (
    BURNED_IN_TEXT,
    ENCAPSULATED_UNVERIFIABLE,
    IDENTIFIER_SURVIVED,
    INVALID_DICOM,
    OCR_FRAME_LIMIT,
    OCR_UNAVAILABLE,
    STRUCTURE_CHECK_FAILED,
    UNSUPPORTED_MEDIA,
    DeidResult,
    Quarantine,
)
from .textscan import scan_text

MEDIA_TYPE = "application/dicom"
PIXEL_DATA = 0x7FE00010
BULK_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, PIXEL_DATA})
MIN_IDENTIFIER_LEN = 3
WEAK_MIN_LEN = 8
EXACT, STRICT, WEAK = "exact", "strict", "weak"
MAX_OCR_FRAMES = 64

# Objects whose pixels commonly carry burned-in text and therefore get an OCR check.
OCR_MODALITIES = frozenset({"US", "SC", "OT", "XC", "ES", "GM", "DOC"})
# DERIVED\SECONDARY is the normal ImageType of every CT/MR/PET reformat; for these modalities only
# screen captures (SCREEN SAVE, Secondary Capture SOP classes) are OCR-checked.
OCR_EXEMPT_SECONDARY_MODALITIES = frozenset({"CT", "MR", "PT", "NM"})
SECONDARY_CAPTURE_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4",
    }
)
VISIBLE_LIGHT_PREFIX = "1.2.840.10008.5.1.4.1.1.77."
NON_IMAGE_CLASSES = frozenset({"1.2.840.10008.1.3.10"})  # Media Storage Directory Storage

_DUMMY_BY_VR: dict[str, Any] = {
    "PN": "ANONYMOUS",
    "LO": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "UT": "ANONYMIZED",
    "UC": "ANONYMIZED",
    "AE": "ANONYMIZED",
    "CS": "ANONYMIZED",
    "UR": "",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000Y",
    "DS": "0",
    "IS": "0",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "UV": 0,
    "SV": 0,
    "FL": 0.0,
    "FD": 0.0,
}
_NUMERIC_BINARY_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})
_NUMERIC_TEXT_RE = re.compile(rb"^[0-9+\-.eE\\ ]*\x00?$")
_DESCRIPTOR_ALLOWED = re.compile(r"^[A-Za-z0-9 +\-_/.,:;()\[\]#%&*'=<>^]{1,64}$")
_LONG_DIGITS = re.compile(r"\d{5,}")
_SEX_VALUES = frozenset({"M", "F", "O"})
_DEID_METHOD_PREFIX = "CASEBOOK DEID PS3.15 E.1-1 2026c"


_FAST_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR"})
_SINGLE_VALUE_VRS = frozenset({"LT", "ST", "UT", "UR"})
_LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_UNDEFINED = 0xFFFFFFFF


def codec_for(ds: Dataset) -> str | None:
    """Python codec for the dataset's text, or None when pydicom must decode (ISO 2022 switching)."""
    raw = _elements(ds).get(0x00080005)
    if raw is None:
        return "latin-1"
    if isinstance(raw, RawDataElement):
        if not isinstance(raw.value, bytes):
            return None
        terms = [t.strip(" \x00") for t in raw.value.decode("latin-1").split("\\")]
    else:
        terms = [str(t).strip() for t in _strings(raw.value)]
    terms = [t for t in terms if t] or [""]
    if len(terms) != 1:
        return None
    codec = python_encoding.get(terms[0])
    return None if codec in (None, "iso2022_jp", "iso2022_jp_2", "euc_kr", "shift_jis") else codec


def raw_text(tag: int, vr: str, values: list[str], implicit: bool, little: bool) -> RawDataElement:
    """A pre-encoded raw element for ASCII values we generate (UIDs, dates, pseudonyms, dummies)."""
    data = "\\".join(values).encode("ascii")
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return RawDataElement(BaseTag(tag), vr, len(data), data, 0, implicit, little)


def _header(out: bytearray, tag: int, vr: str | None, length: int, implicit: bool, little: bool) -> None:
    e = "<" if little else ">"
    out += struct.pack(e + "HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        out += struct.pack(e + "L", length)
    elif vr in _LONG_LENGTH_VRS:
        out += vr.encode("ascii") + b"\x00\x00" + struct.pack(e + "L", length)
    else:
        out += (vr or "UN").encode("ascii") + struct.pack(e + "H", length)


def encode_elements(ds: Dataset, tags: Iterable[int], implicit: bool, little: bool, out: bytearray) -> None:
    """Serialise elements of ``ds`` in tag order.

    Raw elements already in the target encoding are copied byte-for-byte and sequences are
    written item by item (undefined lengths); anything else goes through pydicom's element writer.
    This is what keeps the header path as fast as a plain read+write.
    """
    e = "<" if little else ">"
    d = _elements(ds)
    for tag in sorted(tags):
        elem: Any = d[tag]
        if isinstance(elem, RawDataElement):
            value = elem.value
            vr = elem.VR
            if (
                isinstance(value, bytes)
                and elem.length != _UNDEFINED
                and elem.is_implicit_VR == implicit
                and elem.is_little_endian == little
                and (implicit or (vr is not None and len(vr) == 2 and (vr in _LONG_LENGTH_VRS or len(value) <= 0xFFFF)))
            ):
                _header(out, tag, vr, len(value), implicit, little)
                out += value
                continue
            elem = ds[tag]
        if elem.VR == "SQ":
            _header(out, tag, "SQ", _UNDEFINED, implicit, little)
            for item in elem.value:
                out += struct.pack(e + "HHL", 0xFFFE, 0xE000, _UNDEFINED)
                encode_elements(item, list(_elements(item)), implicit, little, out)
                out += struct.pack(e + "HHL", 0xFFFE, 0xE00D, 0)
            out += struct.pack(e + "HHL", 0xFFFE, 0xE0DD, 0)
            continue
        fp = DicomBytesIO()
        fp.is_little_endian = little
        fp.is_implicit_VR = implicit
        write_data_element(fp, elem, ds._character_set)
        out += fp.getvalue()


def _elements(ds: Dataset) -> dict[int, Any]:
    """The dataset's element map (tag -> raw or decoded element); BaseTag keys are plain ints."""
    return ds._dict  # type: ignore[return-value]


def _vr_of(tag: int, raw: DataElement | RawDataElement) -> str | None:
    vr = raw.VR
    if vr and len(vr) == 2 and vr != "UN":
        return vr
    entry = DicomDictionary.get(tag)
    if entry is None:
        return vr if vr else None
    return entry[0][:2] if entry[0] else None


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, PersonName, UID)):
        return [str(value)]
    if isinstance(value, (MultiValue, list, tuple)):
        return [str(v) for v in value if v is not None and not isinstance(v, (bytes, Dataset))]
    if isinstance(value, (int, float)):
        return [str(value)]
    return []


class _Pass:
    """State of one de-identification pass (one object)."""

    def __init__(self, key: CaseKey, implicit: bool, little: bool, codec: str | None) -> None:
        table = load_table()
        self.implicit = implicit
        self.little = little
        self.codec = codec  # None: multi-byte/ISO 2022 text, decoded by pydicom instead
        self.key = key
        self.exact = table.exact
        self.table = table
        self.offset = key.date_offset_days
        self.allow = load_private_allowlist()
        self.allow_groups = frozenset(g for g, _, _ in self.allow)
        self.secrets: dict[str, str] = {}  # input value -> match kind (see survivors)
        self.text_ids: set[str] = set()
        self.inserted: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.descriptors: list[tuple[Dataset, int, str]] = []

    # -- identifier collection ---------------------------------------------------------------
    def _remember(self, tag: int, vr: str, values: Iterable[str]) -> None:
        secrets = self.secrets
        for v in values:
            s = v.strip().strip("\x00").strip()
            if len(s) < MIN_IDENTIFIER_LEN:
                continue
            if vr in ("DA", "DT"):
                for variant in date_variants(s):
                    secrets[variant] = EXACT
            elif vr == "UI":
                secrets[s] = EXACT
            elif vr == "PN" or tag in STRICT_TAGS:
                secrets[s] = STRICT
            else:
                secrets.setdefault(s, WEAK)
            if vr == "PN":
                parts = [p.strip() for p in re.split(r"[\^=]", s) if len(p.strip()) >= MIN_IDENTIFIER_LEN]
                for part in parts:
                    secrets[part] = STRICT
                self.text_ids.update(parts)
                self.text_ids.add(s.replace("^", " ").strip())
            elif tag in TEXT_IDENTIFIER_TAGS:
                self.text_ids.add(s)

    def _value(self, ds: Dataset, tag: int) -> Any:
        """Decoded value of an element; undecodable elements are dropped (fail closed).

        Plain single-byte/UTF-8 text is decoded straight from the raw bytes: pydicom's general
        conversion (hooks, validation, value objects) costs several times more and dominated
        the header path.
        """
        raw = _elements(ds).get(tag)
        if isinstance(raw, RawDataElement) and isinstance(raw.value, bytes) and raw.VR != "SQ":
            vr = raw.VR or _vr_of(tag, raw)
            if vr in _FAST_TEXT_VRS:
                codec = self.codec if vr not in _ASCII_VRS else "latin-1"
                if codec is not None:
                    text = raw.value.decode(codec, "replace").strip(" \x00")
                    if vr in _SINGLE_VALUE_VRS:
                        return text
                    parts = [p.strip(" \x00") for p in text.split("\\")]
                    return parts[0] if len(parts) == 1 else parts
        try:
            return ds[tag].value
        except Exception:
            raw = _elements(ds).get(tag)
            if isinstance(raw, RawDataElement) and raw.value:
                self.secrets.setdefault(raw.value.decode("latin-1", "replace").strip(" \x00"), WEAK)
            del _elements(ds)[tag]
            self.counts["undecodable_removed"] += 1
            raise

    def _collect(self, ds: Dataset, tag: int, vr: str) -> None:
        if vr in IDENTIFYING_VRS:
            try:
                value = self._value(ds, tag)
            except Exception:  # noqa: BLE001 - pydicom raises many types; any failure fails closed
                return
            self._remember(tag, vr, _strings(value))

    def _collect_tree(self, item: Dataset) -> None:
        """Gather identifiers inside a sequence that is about to be removed or emptied."""
        exact = self.exact
        for tag in list(_elements(item)):
            if (tag >> 16) & 1:
                continue
            raw = _elements(item)[tag]
            vr = _vr_of(tag, raw)
            if vr == "SQ":
                try:
                    for sub in self._value(item, tag) or ():
                        self._collect_tree(sub)
                except Exception:  # noqa: BLE001, S112 - undecodable: already dropped by _value
                    continue
            elif vr and (tag in exact or vr in ("PN", "DA", "DT")):
                self._collect(item, tag, vr)

    # -- element operations ------------------------------------------------------------------
    def _set(self, ds: Dataset, tag: int, vr: str, value: Any) -> None:
        """Store an ASCII text value as a pre-encoded raw element (written byte-for-byte)."""
        values = _strings(value)
        for v in values:
            if v:
                self.inserted.add(v.lower())
        _elements(ds)[tag] = raw_text(tag, vr, values, self.implicit, self.little)

    def _empty(self, ds: Dataset, tag: int, vr: str) -> None:
        _elements(ds)[tag] = raw_text(tag, vr, [], self.implicit, self.little)
        self.counts["emptied"] += 1

    def _dummy(self, ds: Dataset, tag: int, vr: str) -> None:
        if vr == "UI":
            self._uid(ds, tag)
            return
        if vr in _DUMMY_BY_VR and isinstance(_DUMMY_BY_VR[vr], str):
            self._set(ds, tag, vr, _DUMMY_BY_VR[vr])
        elif vr in _DUMMY_BY_VR:
            _elements(ds)[tag] = DataElement(tag, vr, _DUMMY_BY_VR[vr])
        elif vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
            _elements(ds)[tag] = DataElement(tag, vr, b"\x00\x00")
        else:  # AT, SQ and anything exotic: no sensible dummy, remove
            del _elements(ds)[tag]
            self.counts["removed"] += 1
            return
        self.counts["dummied"] += 1

    def _uid(self, ds: Dataset, tag: int) -> None:
        try:
            values = _strings(self._value(ds, tag))
        except Exception:  # noqa: BLE001 - pydicom raises many types; any failure fails closed
            return
        new = [self.key.uid(v) if v.strip() else "" for v in values]
        self._remember(tag, "UI", values)
        self._set(ds, tag, "UI", new[0] if len(new) == 1 else new if new else None)
        self.counts["uid_replaced"] += 1

    def _shift(self, ds: Dataset, tag: int, vr: str, action: str | None) -> None:
        try:
            values = _strings(self._value(ds, tag))
        except Exception:  # noqa: BLE001 - pydicom raises many types; any failure fails closed
            return
        if not values or not any(v.strip() for v in values):
            return
        self._remember(tag, vr, values)
        fn = shift_da if vr == "DA" else shift_dt
        shifted = [fn(v, self.offset) for v in values]
        if any(s is None for s in shifted):
            if action == DUMMY:
                self._dummy(ds, tag, vr)
            elif action in (EMPTY, "Z/D", "X/Z", "X/Z/D"):
                self._empty(ds, tag, vr)
            else:
                del _elements(ds)[tag]
                self.counts["removed"] += 1
            return
        out = [s for s in shifted if s is not None]
        self._set(ds, tag, vr, out[0] if len(out) == 1 else out)
        self.counts["date_shifted"] += 1

    def _pseudonym(self, ds: Dataset, tag: int, vr: str, value: str) -> None:
        self._collect(ds, tag, vr)
        self._set(ds, tag, vr, value)
        self.counts["pseudonymised"] += 1

    def _characteristic(self, ds: Dataset, tag: int, vr: str, action: str) -> None:
        try:
            values = _strings(self._value(ds, tag))
        except Exception:  # noqa: BLE001 - pydicom raises many types; any failure fails closed
            return
        if action == AGE:
            banded = band_age(values[0]) if values else None
            if banded is None:
                del _elements(ds)[tag]
            else:
                self._set(ds, tag, "AS", banded)
                self.counts["age_banded"] += 1
        elif vr == "CS" and values and values[0].strip().upper() not in _SEX_VALUES:
            self._empty(ds, tag, vr)

    def _private(self, ds: Dataset, tag: int, group: int, creators: dict[int, str]) -> bool:
        """Handle one private element; returns True when it is kept (allow-listed)."""
        d = _elements(ds)
        element = tag & 0xFFFF
        if group in self.allow_groups:
            if 0x0010 <= element <= 0x00FF:
                try:
                    creators[tag] = str(self._value(ds, tag)).strip()
                except Exception:  # noqa: BLE001 - pydicom raises many types; any failure fails closed
                    return False
                del d[tag]
                return False
            if element >= 0x1000:
                creator = creators.get((group << 16) | (element >> 8))
                raw = d[tag]
                if creator is not None and (group, creator, element & 0xFF) in self.allow:
                    vr = raw.VR
                    value = raw.value if isinstance(raw, RawDataElement) else None
                    numeric = vr in _NUMERIC_BINARY_VRS or (
                        vr in (None, "UN", "IS", "DS")
                        and isinstance(value, bytes)
                        and _NUMERIC_TEXT_RE.match(value) is not None
                    )
                    if numeric:
                        self.counts["private_retained"] += 1
                        return True
        del d[tag]
        self.counts["private_removed"] += 1
        return False

    # -- the pass ----------------------------------------------------------------------------
    def clean(self, ds: Dataset, top: bool) -> None:
        d = _elements(ds)
        outer_codec = self.codec
        if 0x00080005 in d:
            self.codec = codec_for(ds)
        try:
            self._clean(ds, top)
        finally:
            self.codec = outer_codec

    def _clean(self, ds: Dataset, top: bool) -> None:
        d = _elements(ds)
        exact = self.exact
        table = self.table
        creators: dict[int, str] = {}
        kept_blocks: set[int] = set()
        for tag in list(d):
            group = tag >> 16
            if group & 1:
                if self._private(ds, tag, group, creators):
                    kept_blocks.add((group << 16) | ((tag & 0xFFFF) >> 8))
                continue
            if (
                tag & 0xFFFF == 0
                or group <= 0x0002
                or (group & 0xFF00) in (0x5000, 0x6000)
                or (tag > PIXEL_DATA)
                or tag in METHOD_TAGS
            ):
                # Group lengths go stale, command/meta groups do not belong in a dataset, 50xx/60xx
                # curves and overlays are removed whole (Clean Graphics), trailing padding and
                # signatures after the pixel data carry nothing we keep.
                del d[tag]
                self.counts["graphics_removed" if group >= 0x5000 and group < 0x6100 else "removed"] += 1
                continue
            if tag in BULK_PIXEL_TAGS:
                if not top:
                    del d[tag]
                continue
            raw = d[tag]
            vr = _vr_of(tag, raw)
            action = exact.get(tag)
            if action is None and table.masked_prefixes:
                action = table.action_for(tag)
            if vr is None:
                # A public tag unknown to the dictionary with no explicit VR: cannot reason about it.
                del d[tag]
                self.counts["unknown_removed"] += 1
                continue
            if vr == "SQ":
                self._sequence(ds, tag, action)
                continue
            if action is None:
                if vr in ("DA", "DT"):
                    self._shift(ds, tag, vr, None)
                elif vr == "PN":
                    self._collect(ds, tag, vr)
                    self._empty(ds, tag, vr)
                elif vr == "UI" and tag not in UID_KEEP:
                    self._uid_if_instance(ds, tag)
                continue
            self._apply(ds, tag, vr, action)
        for block in kept_blocks:
            creator_value = creators.get(block)
            if creator_value is not None:
                d[BaseTag(block)] = raw_text(block, "LO", [creator_value], self.implicit, self.little)

    def _uid_if_instance(self, ds: Dataset, tag: int) -> None:
        try:
            values = _strings(self._value(ds, tag))
        except Exception:  # noqa: BLE001 - pydicom raises many types; any failure fails closed
            return
        if all(v.startswith("1.2.840.10008.") or not v.strip() for v in values):
            return  # well-known DICOM UIDs (classes, syntaxes, code schemes) identify nothing
        self._uid(ds, tag)

    def _sequence(self, ds: Dataset, tag: int, action: str | None) -> None:
        try:
            items = self._value(ds, tag) or ()
        except Exception:  # noqa: BLE001 - pydicom raises many types; any failure fails closed
            return
        if action in (None, KEEP, "U", "X/Z/U*"):
            for item in items:
                self.clean(item, top=False)
            return
        for item in items:
            self._collect_tree(item)
        if action in (EMPTY, "X/Z"):
            self._empty(ds, tag, "SQ")
        else:  # X, D, X/D, X/Z/D, C on a sequence: drop it
            del _elements(ds)[tag]
            self.counts["removed"] += 1

    def _apply(self, ds: Dataset, tag: int, vr: str, action: str) -> None:
        if action == REMOVE:
            self._collect(ds, tag, vr)
            del _elements(ds)[tag]
            self.counts["removed"] += 1
            return
        if action in ("U", "X/Z/U*"):
            if vr == "UI":
                self._uid(ds, tag)
            else:
                self._collect(ds, tag, vr)
                self._empty(ds, tag, vr)
            return
        if action == PSEUDO_NAME:
            self._pseudonym(ds, tag, vr, self.key.patient_name)
            return
        if action == PSEUDO_ID:
            self._pseudonym(ds, tag, vr, self.key.patient_id)
            return
        if action == EMPTY_ALWAYS:
            self._collect(ds, tag, vr)
            self._empty(ds, tag, vr)
            return
        if action in (KEEP, AGE):
            self._characteristic(ds, tag, vr, action)
            return
        if action == CLEAN:
            try:
                values = _strings(self._value(ds, tag))
            except Exception:  # noqa: BLE001 - pydicom raises many types; any failure fails closed
                return
            text = "\\".join(values).strip()
            if text:
                self.descriptors.append((ds, tag, text))
            return
        # D, Z and the combined actions on ordinary elements.
        if vr in ("DA", "DT"):
            self._shift(ds, tag, vr, action)  # Retain Longitudinal ... Modified Dates
            return
        if vr == "TM":
            return  # times of day are retained with the modified-dates option
        if vr == "UI":
            self._uid(ds, tag)
            return
        self._collect(ds, tag, vr)
        if action in (DUMMY, "X/D"):
            if vr == "PN":
                self._empty(ds, tag, vr)
            else:
                self._dummy(ds, tag, vr)
        else:  # Z, Z/D, X/Z, X/Z/D
            self._empty(ds, tag, vr)

    def finish_descriptors(self) -> list[str]:
        """Clean Descriptors: keep a description only if it is provably free of identifiers."""
        kept: list[str] = []
        known = sorted(self.secrets, key=len, reverse=True)
        for ds, tag, text in self.descriptors:
            lowered = text.lower()
            ok = (
                _DESCRIPTOR_ALLOWED.match(text) is not None
                and _LONG_DIGITS.search(text) is None
                and not any(k.lower() in lowered for k in known if len(k) >= MIN_IDENTIFIER_LEN)
                and not scan_text(text)
            )
            keyword = DicomDictionary.get(tag, ("", "", "", "", str(tag)))[4]
            if ok:
                kept.append(keyword)
                self.inserted.add(lowered)
                continue
            self._remember(tag, "LO", [text])
            del _elements(ds)[tag]
            self.counts["descriptor_removed"] += 1
        return kept


def _text_value(ds: Dataset, tag: int) -> str:
    """Text of a (usually still raw) element without pydicom's conversion machinery."""
    elem = _elements(ds).get(tag)
    if elem is None:
        return ""
    value = elem.value
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \x00")
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(str(v) for v in value)
    return str(value if value is not None else "").strip(" \x00")


def _int_value(ds: Dataset, tag: int, default: int | None = None) -> int | None:
    elem = _elements(ds).get(tag)
    if elem is None:
        return default
    value = elem.value
    try:
        if isinstance(elem, RawDataElement) and isinstance(value, bytes):
            vr = _vr_of(tag, elem)
            e = "<" if elem.is_little_endian else ">"
            if vr in ("US", "SS", "UL", "SL"):
                fmt = {"US": "H", "SS": "h", "UL": "L", "SL": "l"}[vr]
                size = struct.calcsize(fmt)
                return int(struct.unpack(e + fmt, value[:size])[0]) if len(value) >= size else default
            text = value.decode("latin-1").strip(" \x00").split("\\")[0].strip()
            return int(float(text)) if text else default
        converted = ds[tag].value
        if isinstance(converted, (MultiValue, list)):
            converted = converted[0] if converted else None
        return int(converted) if converted not in (None, "") else default
    except (ValueError, TypeError, struct.error):
        return None


def _burned_in_flag(ds: Dataset) -> bool:
    return _text_value(ds, 0x00280301).strip().upper() == "YES"


def needs_ocr(ds: Dataset) -> bool:
    """Whether the object's pixels may carry text (see OCR_MODALITIES / SC classes / ImageType)."""
    if PIXEL_DATA not in _elements(ds):
        return False
    modality = _text_value(ds, 0x00080060).upper()
    sop_class = _text_value(ds, 0x00080016)
    types = {t.strip().upper() for t in _text_value(ds, 0x00080008).split("\\")}
    if modality in OCR_MODALITIES or sop_class in SECONDARY_CAPTURE_CLASSES:
        return True
    if sop_class.startswith(VISIBLE_LIGHT_PREFIX) or "SCREEN SAVE" in types:
        return True
    return "SECONDARY" in types and modality not in OCR_EXEMPT_SECONDARY_MODALITIES


def _frames_of(arr: np.ndarray, frames: int, samples: int) -> list[np.ndarray]:
    if frames > 1:
        return [arr[i] for i in range(arr.shape[0])]
    return [arr]


def _native_view(ds: Dataset, ts: UID) -> tuple[np.ndarray, bytes] | None:
    """Writable array over the stored pixel bytes, or None when in-place redaction is not possible."""
    if ts.is_compressed:
        return None
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if bits not in (8, 16, 32):
        return None
    pi = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if pi not in ("MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL"):
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    planar = int(ds.get("PlanarConfiguration", 0) or 0)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}").newbyteorder("<" if ts.is_little_endian else ">")
    raw = bytes(ds.PixelData)
    expected = rows * cols * frames * samples * (bits // 8)
    if len(raw) < expected:
        return None
    arr = np.frombuffer(raw[:expected], dtype=dtype).copy()
    if samples == 1:
        arr = arr.reshape(frames, rows, cols)
    elif planar == 0:
        arr = arr.reshape(frames, rows, cols, samples)
    else:
        arr = arr.reshape(frames, samples, rows, cols).transpose(0, 2, 3, 1)
    return arr, raw[expected:]


def _store_view(ds: Dataset, arr: np.ndarray, tail: bytes, original_vr: str | None) -> None:
    planar = int(ds.get("PlanarConfiguration", 0) or 0)
    if arr.ndim == 4 and planar == 1:
        arr = arr.transpose(0, 3, 1, 2)
    data = np.ascontiguousarray(arr).tobytes() + tail
    vr = original_vr if original_vr in ("OB", "OW") else ("OB" if arr.dtype.itemsize == 1 else "OW")
    _elements(ds)[PIXEL_DATA] = DataElement(PIXEL_DATA, vr, data)


def _ocr_frames(frames: list[np.ndarray], invert: bool) -> list[list[ocr_mod.TextBox]]:
    return [ocr_mod.find_text(ocr_mod.to_uint8(f, invert=invert)) for f in frames]


def ocr_and_redact(ds: Dataset, ts: UID, flags: list[str]) -> None:
    """OCR every frame; redact found text in place and verify nothing readable remains."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > MAX_OCR_FRAMES:
        raise Quarantine(OCR_FRAME_LIMIT, f"{frames} frames")
    try:
        ocr_mod.get_engine()
    except ocr_mod.OcrUnavailable as exc:
        raise Quarantine(OCR_UNAVAILABLE, str(exc)) from exc
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    invert = str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1"
    try:
        arr = ds.pixel_array
    except Exception as exc:
        raise Quarantine(ENCAPSULATED_UNVERIFIABLE if ts.is_compressed else INVALID_DICOM, str(exc)) from exc
    found = _ocr_frames(_frames_of(arr, frames, samples), invert)
    flags.append("ocr_checked")
    boxes = [b for per_frame in found for b in per_frame]
    if not boxes:
        return
    original_vr = _elements(ds)[PIXEL_DATA].VR
    view = _native_view(ds, ts)
    if view is None:
        raise Quarantine(BURNED_IN_TEXT, "text found; pixel encoding cannot be redacted in place")
    stored, tail = view
    # Redact the union of all boxes on every frame: cine loops repeat overlays with small shifts.
    for b in boxes:
        stored[:, b.y0 : b.y1, b.x0 : b.x1, ...] = 0
    _store_view(ds, stored, tail, original_vr)
    check = ds.pixel_array
    residual = _ocr_frames(_frames_of(check, frames, samples), invert)
    if any(residual):
        raise Quarantine(BURNED_IN_TEXT, "text remains after redaction")
    flags.append("burned_in_text_redacted")


def _transfer_syntax(ds: Dataset) -> UID:
    """Transfer syntax to write with: the original, unless it contradicts how the data was encoded."""
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


def _check_pixel_length(ds: Dataset, ts: UID) -> None:
    raw = _elements(ds).get(PIXEL_DATA)
    if raw is None or ts.is_compressed:
        return
    rows, cols = _int_value(ds, 0x00280010), _int_value(ds, 0x00280011)
    bits = _int_value(ds, 0x00280100)
    frames = _int_value(ds, 0x00280008, 1) or 1
    samples = _int_value(ds, 0x00280002, 1) or 1
    if rows is None or cols is None or bits is None:
        raise Quarantine(INVALID_DICOM, "image pixel module incomplete")
    expected = (rows * cols * frames * samples * bits + 7) // 8
    if _text_value(ds, 0x00280004).upper() in ("YBR_FULL_422", "YBR_PARTIAL_422"):
        expected = expected * 2 // 3  # chroma subsampled 4:2:2 stores two samples per pixel
    value = raw.value if raw.value is not None else b""
    if len(value) < expected:
        raise Quarantine(INVALID_DICOM, "pixel data shorter than its description")


@lru_cache(maxsize=8)
def _method_sequence(implicit: bool, little: bool, with_private: bool) -> RawDataElement:
    """DeidentificationMethodCodeSequence, encoded once per transfer-syntax encoding."""
    codes = list(METHOD_CODES) + ([SAFE_PRIVATE_CODE] if with_private else [])
    e = "<" if little else ">"
    body = bytearray()
    for value, meaning in codes:
        item = Dataset()
        _elements(item)[BaseTag(0x00080100)] = raw_text(0x00080100, "SH", [value], implicit, little)
        _elements(item)[BaseTag(0x00080102)] = raw_text(0x00080102, "SH", ["DCM"], implicit, little)
        _elements(item)[BaseTag(0x00080104)] = raw_text(0x00080104, "LO", [meaning], implicit, little)
        encoded = bytearray()
        encode_elements(item, list(_elements(item)), implicit, little, encoded)
        body += struct.pack(e + "HHL", 0xFFFE, 0xE000, len(encoded)) + encoded
    tag = 0x00120064
    return RawDataElement(BaseTag(tag), "SQ", len(body), bytes(body), 0, implicit, little)


def _encode_variants(s: str, codec: str | None) -> set[bytes]:
    out = {s.lower().encode("utf-8"), s.lower().encode("utf-16-le")}
    for enc in ("latin-1", codec):
        if enc:
            with contextlib.suppress(UnicodeEncodeError, LookupError):
                out.add(s.lower().encode(enc))
    return {v for v in out if len(v) >= MIN_IDENTIFIER_LEN}


def _bounded_in(hay: bytes, needle: bytes) -> bool:
    """``needle`` occurs in ``hay`` with no letter/digit/underscore directly on either side."""
    start = hay.find(needle)
    while start != -1:
        end = start + len(needle)
        before, after = hay[start - 1 : start], hay[end : end + 1]
        if not (before.isalnum() or before == b"_") and not (after.isalnum() or after == b"_"):
            return True
        start = hay.find(needle, start + 1)
    return False


def survivors(hay: bytes, secrets: dict[str, str], inserted: Iterable[str], codec: str | None) -> list[str]:
    """Input identifiers found in output bytes (case-insensitive).

    Match strength depends on what the value is (``secrets`` maps value -> kind):
    EXACT (dates, UIDs) and STRICT values of 5+ characters (names, patient IDs, addresses) match
    as plain substrings; shorter STRICT values must stand as a whole word; WEAK values (other
    removed free text) only count from WEAK_MIN_LEN characters, as whole words, because short
    generic words ("Here", "patient") legitimately recur in kept attributes.

    Values that we ourselves wrote (dummies, pseudonyms, shifted dates, retained clean
    descriptors) are exempt: a coincidental match with them reveals nothing about the input.
    """
    hay_l = hay.lower()
    ins = list(inserted)
    found = []
    for s, kind in secrets.items():
        sl = s.lower()
        if len(sl) < MIN_IDENTIFIER_LEN or any(sl in i for i in ins):
            continue
        if kind == WEAK and len(sl) < WEAK_MIN_LEN:
            continue
        plain = kind == EXACT or (kind == STRICT and len(sl) >= 5)
        for v in _encode_variants(s, codec):
            if (v in hay_l) if plain else _bounded_in(hay_l, v):
                found.append(s)
                break
    return found


def _meta_bytes(meta: dict[int, tuple[str, bytes]]) -> bytes:
    """Preamble, prefix and File Meta Information (always explicit VR little endian, PS3.10 7.1)."""
    elements = bytearray()
    for tag in sorted(meta):
        vr, value = meta[tag]
        _header(elements, tag, vr, len(value), False, True)
        elements += value
    group_length = bytearray()
    _header(group_length, 0x00020000, "UL", 4, False, True)
    group_length += struct.pack("<L", len(elements))
    return b"\x00" * 128 + b"DICM" + bytes(group_length) + bytes(elements)


def _padded(text: str, pad: bytes) -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


def _write(ds: Dataset, meta: dict[int, tuple[str, bytes]], ts: UID) -> tuple[bytes, bytes, bytes, int]:
    """Encode the object.

    Returns (file bytes, bytes to search = everything except pixel values, the buffer holding the
    un-deflated dataset, offset of the dataset in that buffer) so verification never has to re-read
    the file.  The output is built in one buffer: pixel data is copied as few times as possible.
    """
    head = _meta_bytes(meta)
    implicit, little = ts.is_implicit_VR, ts.is_little_endian
    out = bytearray(head)
    encode_elements(ds, [t for t in _elements(ds) if t not in BULK_PIXEL_TAGS], implicit, little, out)
    searchable = bytes(out)
    encode_elements(ds, [t for t in _elements(ds) if t in BULK_PIXEL_TAGS], implicit, little, out)
    data = bytes(out)
    if ts != DeflatedExplicitVRLittleEndian:
        return data, searchable, data, len(head)
    plain = data[len(head) :]
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    encoded = compressor.compress(plain) + compressor.flush()
    if len(encoded) % 2:
        encoded += b"\x00"
    return head + encoded, searchable, plain, 0


_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_LENGTH_VR_BYTES = frozenset(vr.encode("ascii") for vr in _LONG_LENGTH_VRS)


class _Scanner:
    """Walks every element header of an encoded dataset without decoding values.

    This is the post-write structure check: element lengths must chain exactly to the end of the
    stream, tags must ascend within each dataset, and no private (unless allow-listed), curve or
    overlay group may appear at any depth.  It is ~10x cheaper than re-parsing with pydicom, which
    the tests do on every corpus output instead.
    """

    def __init__(self, buf: bytes, implicit: bool, little: bool) -> None:
        self.buf = buf
        self.implicit = implicit
        self.e = "<" if little else ">"
        self.allowed_groups = frozenset(g for g, _, _ in load_private_allowlist())

    def _fail(self, why: str) -> Quarantine:
        return Quarantine(STRUCTURE_CHECK_FAILED, why)

    def dataset(self, pos: int, limit: int, in_undefined_item: bool) -> int:
        buf, e = self.buf, self.e
        previous = -1
        while pos < limit:
            if pos + 8 > limit:
                raise self._fail("partial element header")
            group, element = struct.unpack_from(e + "HH", buf, pos)
            tag = (group << 16) | element
            if tag == _ITEM_END:
                if not in_undefined_item:
                    raise self._fail("unexpected item delimiter")
                return pos + 8
            if tag <= previous:
                raise self._fail("tags not ascending")
            previous = tag
            if (group & 1 and group not in self.allowed_groups) or (group & 0xFF00) in (0x5000, 0x6000):
                raise self._fail(f"group {group:04X} present in output")
            if self.implicit:
                (length,) = struct.unpack_from(e + "L", buf, pos + 4)
                entry = DicomDictionary.get(tag)
                is_sq = entry is not None and entry[0] == "SQ"
                pos += 8
            else:
                vr = buf[pos + 4 : pos + 6]
                is_sq = vr == b"SQ"
                if vr in _LONG_LENGTH_VR_BYTES:
                    (length,) = struct.unpack_from(e + "L", buf, pos + 8)
                    pos += 12
                else:
                    (length,) = struct.unpack_from(e + "H", buf, pos + 6)
                    pos += 8
            if length == _UNDEFINED:
                pos = self.items(pos, limit, None, parse=tag != PIXEL_DATA)
            else:
                if pos + length > limit:
                    raise self._fail("value runs past the end")
                if is_sq:
                    self.items(pos, limit, pos + length, parse=True)
                pos += length
        if in_undefined_item:
            raise self._fail("missing item delimiter")
        return pos

    def items(self, pos: int, limit: int, end: int | None, parse: bool) -> int:
        buf, e = self.buf, self.e
        while True:
            if end is not None and pos == end:
                return pos
            if pos + 8 > limit:
                raise self._fail("sequence runs past the end")
            group, element, length = struct.unpack_from(e + "HHL", buf, pos)
            tag = (group << 16) | element
            pos += 8
            if tag == _SEQUENCE_END and end is None:
                return pos
            if tag != _ITEM:
                raise self._fail("expected an item")
            if length == _UNDEFINED:
                if not parse:
                    raise self._fail("undefined-length fragment")
                pos = self.dataset(pos, limit, True)
            else:
                if pos + length > limit:
                    raise self._fail("item runs past the end")
                if parse and self.dataset(pos, pos + length, False) != pos + length:
                    raise self._fail("item length mismatch")
                pos += length


def _verify_structure(body: bytes, start: int, implicit: bool, little: bool) -> None:
    """The encoded dataset must frame exactly and carry no private, overlay or curve groups."""
    scanner = _Scanner(body, implicit, little)
    try:
        end = scanner.dataset(start, len(body), False)
    except struct.error as exc:
        raise Quarantine(STRUCTURE_CHECK_FAILED, "malformed element header") from exc
    if end != len(body):
        raise Quarantine(STRUCTURE_CHECK_FAILED, "trailing bytes after dataset")


def _truncated(ds: Dataset, size: int) -> bool:
    """pydicom silently returns short values and stops at a partial element header; detect both."""
    last_end = None
    for elem in _elements(ds).values():
        if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED:
            last_end = None
            continue
        if elem.value is not None and len(elem.value) != elem.length:
            return True
        last_end = elem.value_tell + elem.length
    meta = getattr(ds, "file_meta", None)
    deflated = meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    return last_end is not None and not deflated and last_end < size


def read_dataset(data: bytes) -> Dataset:
    """Parse DICOM bytes; a preamble-less stream must yield a real dataset to be accepted."""
    has_preamble = len(data) >= 132 and data[128:132] == b"DICM"
    try:
        # pydicom reports a truncated stream as a warning and returns what it got; a partial object
        # must not pass as a complete one, so that warning is promoted to a quarantine.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = dcmread(BytesIO(data), force=not has_preamble)
        if any("end of file" in str(w.message).lower() for w in caught) or _truncated(ds, len(data)):
            raise Quarantine(INVALID_DICOM, "truncated")
        if not has_preamble and ("SOPClassUID" not in ds or len(_elements(ds)) < 3):
            raise Quarantine(INVALID_DICOM, "no DICOM dataset found")
    except Quarantine:
        raise
    except Exception as exc:
        raise Quarantine(INVALID_DICOM, str(exc)) from exc
    return ds


def deidentify_dicom(data: bytes, key: CaseKey, ocr: bool) -> DeidResult:
    ds = read_dataset(data)
    flags: list[str] = []
    ts = _transfer_syntax(ds)
    sop_class = _text_value(ds, 0x00080016)
    if not sop_class:
        # Type 1 in every IOD; its absence also catches streams cut between two elements.
        raise Quarantine(INVALID_DICOM, "no SOP Class UID")
    if 0x00280010 in _elements(ds) and not any(t in _elements(ds) for t in BULK_PIXEL_TAGS):
        # Rows without pixel data is what a stream cut after the image pixel description looks
        # like; header-only objects without an image pixel module are processed normally.
        raise Quarantine(INVALID_DICOM, "image pixel description without pixel data (truncated?)")
    if str(sop_class) in NON_IMAGE_CLASSES:
        # A DICOMDIR indexes files by path, and paths are commonly built from patient IDs.
        raise Quarantine(UNSUPPORTED_MEDIA, "media storage directory")
    if _burned_in_flag(ds):
        raise Quarantine(BURNED_IN_TEXT, "BurnedInAnnotation is YES")
    _check_pixel_length(ds, ts)
    ocr_needed = needs_ocr(ds)
    if ocr_needed and not ocr:
        raise Quarantine(OCR_UNAVAILABLE, "OCR required for this object but disabled")
    sop_instance_in = _text_value(ds, 0x00080018)

    implicit, little = ts.is_implicit_VR, ts.is_little_endian
    p = _Pass(key, implicit, little, codec_for(ds))
    p.clean(ds, top=True)
    kept_descriptors = p.finish_descriptors()

    # De-identification method, pseudonyms and the option markers (PS3.15 E.1.1).
    method = [_DEID_METHOD_PREFIX, f"key:{key.key_id}"[:64]]
    new_sop = _text_value(ds, 0x00080018) if sop_instance_in else ""
    if not new_sop:
        new_sop = key.uid("casebook-missing-sop:" + str(sop_class) + ":" + str(len(data)))
    additions: list[tuple[int, str, list[str]]] = [
        (0x00080016, "UI", [str(sop_class)]),
        (0x00080018, "UI", [new_sop]),
        (0x00100010, "PN", [key.patient_name]),
        (0x00100020, "LO", [key.patient_id]),
        (0x00120062, "CS", ["YES"]),
        (0x00120063, "LO", method),
        (0x00280303, "CS", ["MODIFIED"]),
    ]
    for tag, vr, values in additions:
        _elements(ds)[BaseTag(tag)] = raw_text(tag, vr, values, implicit, little)
    _elements(ds)[BaseTag(0x00120064)] = _method_sequence(implicit, little, bool(p.counts["private_retained"]))
    for s_ in (key.patient_name, key.patient_id, *method):
        p.inserted.add(s_.lower())

    if ocr_needed:
        ocr_and_redact(ds, ts, flags)

    meta = {
        0x00020001: ("OB", b"\x00\x01"),
        0x00020002: ("UI", _padded(str(sop_class), b"\x00")),
        0x00020003: ("UI", _padded(new_sop, b"\x00")),
        0x00020010: ("UI", _padded(str(ts), b"\x00")),
        0x00020012: ("UI", _padded(IMPLEMENTATION_CLASS_UID, b"\x00")),
        0x00020013: ("SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")),
    }

    out, searchable, plain, start = _write(ds, meta, ts)
    leaked = survivors(searchable, p.secrets, p.inserted, codec_for(ds))
    if leaked:
        raise Quarantine(IDENTIFIER_SURVIVED, f"{len(leaked)} input value(s) found in output")
    _verify_structure(plain, start, implicit, little)

    if p.counts["date_shifted"]:
        flags.append("dates_shifted")
    if p.counts["private_retained"]:
        flags.append("private_retained")
    if not ocr_needed:
        flags.append("ocr_not_required")
    actions = [f"{name}:{n}" for name, n in sorted(p.counts.items()) if n]
    actions += [f"descriptor_kept:{k}" for k in kept_descriptors]
    info = _info(ds, actions, flags)
    return DeidResult("ready", [], out, MEDIA_TYPE, info, sorted(p.text_ids))


def _info(ds: Dataset, actions: list[str], flags: list[str]) -> dict[str, Any]:
    def text(tag: int) -> str | None:
        return _text_value(ds, tag) or None

    return {
        "modality": text(0x00080060),
        "study_uid": text(0x0020000D),
        "series_uid": text(0x0020000E),
        "sop_instance_uid": text(0x00080018),
        "series_number": _int_value(ds, 0x00200011),
        "series_description": text(0x0008103E),
        "instance_number": _int_value(ds, 0x00200013),
        "rows": _int_value(ds, 0x00280010),
        "columns": _int_value(ds, 0x00280011),
        "frames": _int_value(ds, 0x00280008) or (1 if PIXEL_DATA in _elements(ds) else 0),
        "actions": actions,
        "flags": flags,
    }
