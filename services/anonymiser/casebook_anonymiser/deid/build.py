"""The allow-list pass: build the output dataset from what a teaching case needs, drop the rest.

Every input element is either rebuilt by its allow-list rule (checked against its VR, rewritten,
shifted, banded or rebuilt from the vocabulary) or dropped, at every depth. Values that are dropped
are remembered (in memory only) so the verification pass can prove they are gone.
"""

from __future__ import annotations

import math
import re
import struct
from collections import Counter
from typing import Any

from pydicom._dicom_dict import DicomDictionary
from pydicom.charset import python_encoding
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset as PydicomDataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from . import elements as el
from .allowlist import Rule, rules, tag_of
from .dates import band_age, shift_da, shift_dt
from .keys import CaseKey
from .profile import STRICT_TAGS, TEXT_IDENTIFIER_TAGS, load_private_allowlist
from .reader import elements
from .verify import Secrets
from .vocab import clean_code, clean_text

PIXEL_TAGS = frozenset({tag_of("PixelData"), tag_of("FloatPixelData"), tag_of("DoubleFloatPixelData")})
SPECIFIC_CHARACTER_SET = tag_of("SpecificCharacterSet")
PRIVATE_CREATOR_ELEMENTS = range(0x0010, 0x0100)  # (gggg,0010-00FF) reserve a block for a private creator
_SIZES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "OW": 2, "OB": 1, "OF": 4, "OD": 8,
          "OL": 4, "OV": 8, "UV": 8, "SV": 8}
_DS = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_IS = re.compile(r"^[+-]?\d{1,12}$")
_TM = re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_NUMERIC_TEXT = re.compile(r"^[0-9.+\-]{1,16}$")
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{3,}")
# Text inside encoded bytes: printable ASCII, and bytes of other character sets (Latin-1, UTF-8, ISO 2022
# escapes), in runs of 2+ (short CJK name parts are two bytes).
_TEXT_RUN = re.compile(rb"[\x1b\x20-\x7e\x80-\xff]{2,}")
_WORD_VRS = frozenset({"CS", "SH", "LO", "LT", "ST", "UT", "UC"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "US", "SS", "UL", "SL", "FL", "FD", "AT", "UV", "SV"})
_FREE_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT", "UR", "AE"})
_STANDARD_UID_PREFIX = "1.2.840.10008."
_SEX = frozenset({"M", "F", "O"})
MAX_DEPTH = 8
MAX_REMEMBERED = 16384  # bytes of a dropped private/unknown value searched for (names and IDs are short)


class Builder:
    """One pass over one input object."""

    def __init__(self, key: CaseKey, little: bool) -> None:
        self.key = key
        self.little = little
        self.rules = rules()
        self.private = load_private_allowlist()
        self.secrets = Secrets()
        self.kept: set[str] = set()
        self.rewritten: set[str] = set()
        self.removed: Counter[str] = Counter()
        self.private_kept = 0
        self.dates_shifted = 0
        self.word_slots: list[tuple[el.Dataset, int]] = []  # kept text made of vocabulary words
        self.codec: str | None = "latin-1"  # None: ISO 2022 or multi-byte text, decoded by pydicom

    # -- reading input values ------------------------------------------------------------------
    @staticmethod
    def _decoded(ds: PydicomDataset, tag: int) -> Any:
        try:
            return ds[tag].value
        except Exception:  # noqa: BLE001 - undecodable input values are dropped (fail closed)
            return None

    def _strings(self, ds: PydicomDataset, tag: int, vr: str | None = None, raw: Any = None) -> list[str]:
        """Decoded text values; plain single-byte or UTF-8 text is decoded straight from the bytes."""
        if raw is not None and self.codec is not None and isinstance(raw.value, bytes):
            text = raw.value.decode(self.codec, "replace").rstrip(" \x00")
            return [text] if vr in ("LT", "ST", "UT", "UR") else text.split("\\")
        value = self._decoded(ds, tag)
        if value is None:
            return []
        if isinstance(value, (str, PersonName)):
            return [str(value)]
        if isinstance(value, (MultiValue, list, tuple)):
            return [str(v) for v in value if isinstance(v, (str, PersonName, int, float))]
        if isinstance(value, bytes):
            return [m.decode("latin-1") for m in _PRINTABLE_RUN.findall(value)]
        return [str(value)]

    def _raw_ascii(self, raw: Any) -> str | None:
        value = raw.value if isinstance(raw, RawDataElement) else None
        if not isinstance(value, bytes):
            return None
        try:
            return value.decode("ascii").rstrip(" \x00")
        except UnicodeDecodeError:
            return None

    def _binary(self, raw: Any, vr: str, ds: PydicomDataset, tag: int) -> bytes | None:
        value = raw.value if isinstance(raw, RawDataElement) else None
        size = _SIZES.get(vr, 1)
        if not isinstance(value, bytes):
            return None
        if len(value) % size:
            return None
        if not self.little and size > 1:
            count = len(value) // size
            unit = 2 if vr == "AT" else size
            fmt = {2: "H", 4: "L", 8: "Q"}[unit]
            n = count * (size // unit)
            value = struct.pack(f"<{n}{fmt}", *struct.unpack(f">{n}{fmt}", value))
        return value

    # -- remembering what is dropped -------------------------------------------------------------
    def forget(self, ds: PydicomDataset, tag: int, raw: Any, depth: int) -> None:
        """Record a dropped element's values as secrets (never stored, only searched for)."""
        private = bool((tag >> 16) & 1)
        if private:
            self.removed["private"] += 1
            if isinstance(raw.value, bytes) and raw.VR not in _BINARY_VRS:
                self.secrets.words(raw.value[:MAX_REMEMBERED].decode("latin-1"))
            return
        entry = DicomDictionary.get(tag)
        keyword = entry[4] if entry else ""
        self.removed[keyword or "unknown"] += 1
        vr = raw.VR if raw.VR and raw.VR != "UN" else (entry[0] if entry else None)
        if vr == "SQ" and isinstance(raw, RawDataElement) and isinstance(raw.value, bytes):
            # A dropped sequence is not parsed (SR trees hold thousands of items): its encoded bytes are
            # searched as text instead, names (with '^') kept apart as identifying values.
            self._remember_bytes(raw.value)
            return
        if vr == "SQ":
            value = self._decoded(ds, tag)
            if depth < MAX_DEPTH and value is not None:
                for item in value:
                    if isinstance(item, PydicomDataset):
                        for sub_tag, sub_raw in list(item._dict.items()):
                            self.forget(item, sub_tag, sub_raw, depth + 1)
            return
        if tag in PIXEL_TAGS or vr in _BINARY_VRS:
            return
        if vr is None or not keyword or (raw.VR == "UN" and entry is None):
            # Unknown or UN: whatever readable text it holds counts as identifying.
            if isinstance(raw.value, bytes):
                self._remember_bytes(raw.value)
            return
        values = self._strings(ds, tag, vr, raw)
        if vr == "PN":
            for v in values:
                self.secrets.name(v)
        elif vr in ("DA", "DT"):
            for v in values:
                self.secrets.date(v)
        elif vr == "UI":
            for v in values:
                if not v.strip().startswith(_STANDARD_UID_PREFIX):
                    self.secrets.uid(v)
        elif tag in STRICT_TAGS or tag in TEXT_IDENTIFIER_TAGS:
            for v in values:
                self.secrets.strict(v)
                self.secrets.text_ids.add(v.strip())
        elif vr in _FREE_TEXT_VRS:
            for v in values:
                self.secrets.words(v)

    def _remember_bytes(self, data: bytes) -> None:
        """Readable text inside encoded bytes (a dropped sequence, an unknown value) counts as identifying."""
        codec = self.codec or "latin-1"
        for run in _TEXT_RUN.findall(data[: MAX_REMEMBERED * 8]):
            text = run.decode(codec, "replace")
            self.secrets.words(text)
            if "^" in text:
                self.secrets.strict_parts.append(text)

    # -- building ------------------------------------------------------------------------------
    def build(self, ds: PydicomDataset, *, top: bool, depth: int = 0) -> el.Dataset:
        # A snapshot of the raw elements: decoding one element (an ambiguous VR, say) makes pydicom
        # convert others in place, and the rules read raw bytes.
        d: dict[int, Any] = dict(elements(ds))
        outer_codec = self.codec
        if SPECIFIC_CHARACTER_SET in d:
            self.codec = _codec(d[SPECIFIC_CHARACTER_SET])
        try:
            return self._build(ds, d, top, depth)
        finally:
            self.codec = outer_codec

    def _build(self, ds: PydicomDataset, d: dict[int, Any], top: bool, depth: int) -> el.Dataset:
        out: el.Dataset = {}
        creators: dict[int, str] = {}
        for tag in list(d):
            raw = d[tag]
            group = tag >> 16
            if group & 1:
                self._private(ds, tag, raw, creators, out)
                continue
            rule = self.rules.get(tag)
            if rule is not None and rule.action == "pixels" and top:
                continue  # the pixel module rewrites it from the input dataset
            if rule is None or rule.action == "generated" or (rule.action == "pixels" and not top):
                self.forget(ds, tag, raw, depth)
                continue
            made = self._apply(ds, tag, raw, rule, depth)
            if made is None:
                self.forget(ds, tag, raw, depth)
            else:
                out[tag] = made
                if made.vr in _WORD_VRS and (rule.action == "vocab" or made.vr == "CS"):
                    self.word_slots.append((out, tag))
        return out

    def finish(self) -> None:
        """Drop from kept words any that is also a word of the patient's or another person's name or of an
        identifier: a surname that happens to be an imaging word ("White", "Head") must not stay beside it.

        Runs after the whole object is read, because names can come after the descriptions in tag order.
        """
        names = self.secrets.name_words()
        if not names:
            return
        for out, tag in self.word_slots:
            element = out.get(tag)
            if element is None:
                continue
            values = element.value.decode("ascii").rstrip(" \x00").split("\\")
            cleaned = []
            for v in values:
                words = [w for w in v.split(" ") if w and w.casefold() not in names]
                if words:
                    cleaned.append(" ".join(words))
            if cleaned == values:
                continue
            self.removed["name_words_in_text"] += 1
            if cleaned:
                out[tag] = el.text(element.vr, cleaned)
            else:
                del out[tag]

    def _file_vr(self, raw: Any, rule: Rule) -> str | None:
        """The VR to write: the dictionary's, unless the file declares a different one (then drop)."""
        declared = raw.VR if isinstance(raw, RawDataElement) else getattr(raw, "VR", None)
        if declared and declared != "UN" and declared not in rule.vrs:
            return None
        if declared in rule.vrs:
            return str(declared)
        return sorted(rule.vrs)[-1] if len(rule.vrs) > 1 else rule.vr

    def _apply(self, ds: PydicomDataset, tag: int, raw: Any, rule: Rule, depth: int) -> el.Element | None:
        action = rule.action
        vr = self._file_vr(raw, rule)
        if vr is None:
            return None
        if action == "pixels":
            return None  # handled by the pixel module, which reads the input dataset itself
        if action == "sequence":
            return self._sequence(ds, tag, rule, depth)
        if action == "keep":
            made = self._keep(ds, tag, raw, vr)
            if made is not None:
                self.kept.add(rule.keyword)
            return made
        text = self._raw_ascii(raw)
        if text is None:
            return None
        values = [v.strip(" ") for v in text.split("\\")]
        made = self._rewrite(action, tag, vr, values, ds)
        if made is not None:
            (self.kept if action in ("class_uid", "time", "sex") else self.rewritten).add(rule.keyword)
        return made

    def _rewrite(self, action: str, tag: int, vr: str, values: list[str], ds: PydicomDataset) -> el.Element | None:
        if action == "uid":
            if not all(_UID.match(v) and len(v) <= 64 for v in values):
                return None
            for v in values:
                if not v.startswith(_STANDARD_UID_PREFIX):
                    self.secrets.uid(v)
            return el.text("UI", [v if v.startswith(_STANDARD_UID_PREFIX) else self.key.uid(v) for v in values])
        if action == "class_uid":
            ok = all(v.startswith(_STANDARD_UID_PREFIX) and _UID.match(v) and len(v) <= 64 for v in values)
            return el.text("UI", values) if ok else None
        if action in ("date", "datetime"):
            for v in values:
                self.secrets.date(v)
            fn = shift_da if action == "date" else shift_dt
            shifted = [fn(v, self.key.date_offset_days) for v in values]
            if any(s is None for s in shifted):
                return None
            self.dates_shifted += 1
            return el.text(vr, [s for s in shifted if s is not None])
        if action == "time":
            return el.text("TM", values) if all(_TM.match(v) for v in values) else None
        if action == "age":
            banded = band_age(values[0]) if len(values) == 1 else None
            return el.text("AS", [banded]) if banded else None
        if action == "sex":
            return el.text("CS", values) if len(values) == 1 and values[0] in _SEX else None
        if action == "vocab":
            return self._vocab(ds, tag, vr)
        return None

    def _vocab(self, ds: PydicomDataset, tag: int, vr: str) -> el.Element | None:
        values = self._strings(ds, tag)
        kept = []
        for v in values:
            self.secrets.words(v)
            cleaned = clean_text(v)
            if cleaned is not None:
                kept.append(cleaned[:64] if vr == "LO" else cleaned[:16] if vr in ("SH", "CS") else cleaned)
        if not kept:
            return None
        self.rewritten.add(keyword_for_tag(tag))
        return el.text(vr, kept if vr not in ("LT", "ST", "UT") else [" ".join(kept)])

    def _keep(self, ds: PydicomDataset, tag: int, raw: Any, vr: str) -> el.Element | None:
        if vr in _SIZES:
            data = self._binary(raw, vr, ds, tag)
            if data is None:
                return None
            if vr in ("FL", "FD") and not _finite(data, vr):
                return None
            return el.binary(vr, data)
        text = self._raw_ascii(raw)
        if text is None:
            return None
        values = [v.strip(" ") for v in text.split("\\")]
        if vr == "DS":
            return el.text("DS", values) if all(_DS.match(v) and len(v) <= 16 for v in values) else None
        if vr == "IS":
            return el.text("IS", values) if all(_IS.match(v) for v in values) else None
        if vr == "CS":
            cleaned = [c for c in (clean_code(v) for v in values) if c is not None]
            return el.text("CS", cleaned) if cleaned else None
        if vr in ("SH", "LO"):
            return el.text(vr, values) if all(_NUMERIC_TEXT.match(v) for v in values) else None
        if vr == "TM":
            return el.text("TM", values) if all(_TM.match(v) for v in values) else None
        return None

    def _sequence(self, ds: PydicomDataset, tag: int, rule: Rule, depth: int) -> el.Element | None:
        if depth >= MAX_DEPTH:
            return None
        value = self._decoded(ds, tag)
        if value is None:
            return None
        items = []
        for item in value:
            if isinstance(item, PydicomDataset):
                built = self.build(item, top=False, depth=depth + 1)
                if built:
                    items.append(built)
        if not items:
            return None
        self.kept.add(rule.keyword)
        return el.Element("SQ", items=items)

    def _private(self, ds: PydicomDataset, tag: int, raw: Any, creators: dict[int, str], out: el.Dataset) -> None:
        group, element = tag >> 16, tag & 0xFFFF
        if element in PRIVATE_CREATOR_ELEMENTS:
            text = self._raw_ascii(raw)
            if text is not None:
                creators[(group << 16) | element] = text.strip()
            self.removed["private_creator"] += 1
            return
        block = (group << 16) | (element >> 8)
        creator = creators.get(block)
        entry = self.private.get((group, creator, element & 0xFF)) if creator is not None else None
        value = self._private_value(raw, entry.vr) if entry is not None else None
        if entry is None or value is None:
            self.forget(ds, tag, raw, 0)
            return
        out[block] = el.text("LO", [entry.creator])
        out[tag] = value
        self.private_kept += 1
        self.kept.add(f"private:{entry.name}")

    def _private_value(self, raw: Any, vr: str) -> el.Element | None:
        """A private value survives only with its listed VR, a fitting length and a value of that type."""
        declared = raw.VR if isinstance(raw, RawDataElement) else None
        if declared not in (None, "UN", vr):
            return None
        data = raw.value if isinstance(raw, RawDataElement) else None
        if not isinstance(data, bytes) or len(data) > 64:
            return None
        if vr in ("FL", "FD"):
            if len(data) % _SIZES[vr] or not _finite(data, vr) or re.search(rb"[A-Za-z]{3}", data):
                return None
            return el.binary(vr, data if self.little else data[::-1])
        try:
            values = [v.strip(" ") for v in data.decode("ascii").rstrip(" \x00").split("\\")]
        except UnicodeDecodeError:
            return None
        pattern = _DS if vr == "DS" else _IS
        if not all(pattern.match(v) and len(v) <= 16 for v in values):
            return None
        return el.text(vr, values)


def _codec(raw: Any) -> str | None:
    """Python codec for a dataset's text, or None when pydicom must decode (code extensions, CJK)."""
    value = raw.value
    if isinstance(value, bytes):
        terms = [t.strip(" \x00") for t in value.decode("latin-1").split("\\")]
    else:
        terms = [str(t).strip() for t in (value if isinstance(value, (list, MultiValue)) else [value])]
    terms = [t for t in terms if t] or [""]
    if len(terms) != 1:
        return None
    codec = python_encoding.get(terms[0])
    return None if codec in (None, "iso2022_jp", "iso2022_jp_2", "euc_kr", "shift_jis", "iso_ir_13", "iso2022_kr",
                             "gb18030", "gbk", "gb2312") else codec


def _finite(data: bytes, vr: str) -> bool:
    fmt = "f" if vr in ("FL", "OF") else "d"
    size = 4 if fmt == "f" else 8
    n = len(data) // size
    return all(math.isfinite(x) for x in struct.unpack(f"<{n}{fmt}", data[: n * size]))
