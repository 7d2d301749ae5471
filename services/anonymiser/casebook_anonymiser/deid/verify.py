"""The verification pass: no identifying input value may be found in the output, in any spelling.

Input values are collected as Unicode (decoded with the declared character set). Output text is
searched after the same normalisation (case-folded, accents removed, common transliterations),
and the output bytes are searched for every value encoded in every character set the standard
allows. Dates are looked for in all common written forms. Separately, the encoded output is
walked header by header: it must frame exactly and hold only allow-listed elements.
"""

from __future__ import annotations

import contextlib
import functools
import re
import struct
import unicodedata
from collections.abc import Iterable
from datetime import date

from pydicom.charset import python_encoding

from .elements import ITEM, ITEM_END, LONG_LENGTH_VRS, SEQUENCE_END, UNDEFINED
from .result import IDENTIFIER_SURVIVED, STRUCTURE_CHECK_FAILED, Quarantine
from .vocab import token_ok

# Every codec behind a DICOM Specific Character Set term (PS3.3 C.12.1.1.2), plus UTF-16 that
# vendors' private text sometimes uses.
CODECS: tuple[str, ...] = tuple(dict.fromkeys([*python_encoding.values(), "utf_16_le", "utf_16_be", "cp1252"]))
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_TRANSLIT = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "đ": "d", "ł": "l", "þ": "th", "ı": "i"})
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_CYRILLIC = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p", "r", "s",
                      "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "iu", "ia"], strict=True))
_CYRILLIC_ALT = {**_CYRILLIC, "й": "y", "х": "h", "ю": "yu", "я": "ya", "ц": "c"}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTH_NAMES = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december"]
_DATE_IN_TEXT = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")


@functools.lru_cache(maxsize=4096)
def normalise(s: str) -> tuple[str, ...]:
    """Spellings of ``s`` to search for: case-folded, accents removed, transliterated."""
    folded = unicodedata.normalize("NFKC", s).casefold()
    out = {folded}
    german = folded.translate(_GERMAN)
    for v in (folded, german):
        stripped = "".join(c for c in unicodedata.normalize("NFKD", v) if not unicodedata.combining(c))
        out.add(stripped.translate(_TRANSLIT))
    if any("\u0400" <= c <= "\u04ff" for c in folded):
        for table in (_CYRILLIC, _CYRILLIC_ALT):
            out.add("".join(table.get(c, c) for c in folded))
    return tuple(v for v in out if v.strip())


def date_forms(y: int, m: int, d: int) -> list[str]:
    """Common written forms of one calendar date."""
    mon, month = _MONTHS[m - 1], _MONTH_NAMES[m - 1]
    yy = f"{y % 100:02d}"
    forms = [f"{y:04d}{m:02d}{d:02d}"]
    for sep in ("-", ".", "/", " "):
        forms += [f"{y:04d}{sep}{m:02d}{sep}{d:02d}", f"{d:02d}{sep}{m:02d}{sep}{y:04d}",
                  f"{m:02d}{sep}{d:02d}{sep}{y:04d}", f"{d}{sep}{m}{sep}{y}", f"{m}{sep}{d}{sep}{y}",
                  f"{d:02d}{sep}{m:02d}{sep}{yy}", f"{m:02d}{sep}{d:02d}{sep}{yy}"]
        forms += [f"{d:02d}{sep}{mon}{sep}{y:04d}", f"{d}{sep}{mon}{sep}{y:04d}", f"{d:02d}{sep}{month}{sep}{y:04d}"]
    forms += [f"{d:02d}{mon}{y:04d}", f"{mon} {d}, {y}", f"{month} {d}, {y}", f"{d} {month} {y}",
              f"{mon} {d:02d} {y}", f"{month} {d} {y}"]
    return forms


def dates_in(value: str) -> list[tuple[int, int, int]]:
    """Calendar dates in a DA/DT value or in free text written as YYYYMMDD."""
    out = []
    for m in _DATE_IN_TEXT.finditer(value.replace(".", "").replace("-", "") if len(value) <= 10 else value):
        with contextlib.suppress(ValueError):
            dt = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            out.append((dt.year, dt.month, dt.day))
    return out


# Casebook's own pseudonyms (keys.CaseKey.patient_name, .patient_id), carried by an input this core has
# de-identified before (`casebook upload` runs it on the contributor's machine): only the keyed part is the
# input's value; the fixed prefix is written into every output and identifies no one.
_OWN_PSEUDONYM = re.compile(r"(?:CASEBOOK\^|CB)([0-9A-F]{10})")


def _own_pseudonym(value: str) -> str:
    m = _OWN_PSEUDONYM.fullmatch(value.strip(" \x00"))
    return m[1] if m else value


class Secrets:
    """Identifying values seen in the input, kept only in memory for the verification pass.

    Collection is cheap (values are appended as they are met); the work happens once, in
    ``found_in``, and is driven by the output: the output's text is small and made only of
    vocabulary words, numbers, codes and values we generated, so each of its other words is looked
    for in the input's identifying text rather than every input word in the output.
    """

    def __init__(self) -> None:
        self.strict_parts: list[str] = []  # names, IDs, addresses, institutions (any word counts)
        self.free_parts: list[str] = []  # other removed text, private and unknown values
        self.dates: set[tuple[int, int, int]] = set()
        self.exact: set[bytes] = set()  # byte strings that must not appear at all (original UIDs)
        self.text_ids: set[str] = set()  # handed back for the case-text scan

    def name(self, value: str) -> None:
        """A person name (PN), with its components and ideographic/phonetic groups."""
        value = _own_pseudonym(value)
        parts = [p.strip() for p in re.split(r"[\^=]", value) if p.strip()]
        if parts:
            # Handed back in PN form (`^` between components) so the case-text scan also digests each word:
            # a surname alone in a case's text is caught, not only the whole name.
            self.text_ids.add("^".join(parts))
            self.strict_parts.append(value)

    def strict(self, value: str) -> None:
        """An identifier (ID, address, institution)."""
        v = _own_pseudonym(value).strip(" \x00")
        if v:
            self.strict_parts.append(v)
            self.dates_from(v)

    def words(self, value: str) -> None:
        """Removed free text: any word of it that is not an imaging term counts as identifying."""
        if value:
            self.free_parts.append(value)
            self.dates_from(value)

    def date(self, value: str) -> None:
        self.dates_from(value)
        v = value.strip(" \x00")
        if len(v) >= 6:
            self.exact.add(v.encode("ascii", "ignore"))

    def dates_from(self, value: str) -> None:
        if _DIGIT.search(value):
            self.dates.update(dates_in(value))

    def uid(self, value: str) -> None:
        v = value.strip(" \x00")
        if len(v) >= 6:
            self.exact.add(v.encode("ascii", "ignore"))

    def name_words(self) -> frozenset[str]:
        """Every word (2+ characters, not a bare number) of the names and identifiers seen, in each
        normalised spelling. Bare numbers are checked apart (5+ digits), as kept measurements hold short ones."""
        words: set[str] = set()
        for part in self.strict_parts:
            for n in normalise(part):
                words.update(w for w in _WORD.findall(n) if len(w) >= 2 and not w.isdigit())
        return frozenset(words)

    def found_in(self, text_values: Iterable[str], data: bytes, bulk: Iterable[bytes] = ()) -> list[str]:
        """What of the input survives in the output (kinds only, never the values)."""
        hay = " ".join(text_values)
        found: list[str] = []
        if not hay.isascii():
            found.append("non_ascii_text")
        hay = hay.casefold()
        all_words = set(_WORD.findall(hay))
        if all_words & self.name_words():
            found.append("name_word")
        risky = {t for t in all_words if not token_ok(t)}
        words = {t for t in risky if not t.isdigit() and len(t) >= 2}
        numbers = {t for t in risky if t.isdigit() and len(t) >= 5}
        if words or numbers:
            strict = normalise("\n".join(self.strict_parts)) if self.strict_parts else []
            free = normalise("\n".join(self.free_parts)) if self.free_parts else []
            if any(_bounded(b, w) for w in words for b in (*strict, *free)):
                found.append("word")
            if any(_bounded(b, n) for n in numbers for b in strict):
                found.append("identifier_number")
        if any(_bounded(hay, f) for y, m, d in self.dates for f in _date_forms(y, m, d)):
            found.append("date")
        lowered = data.lower()
        if any(e.lower() in lowered for e in self.exact):
            found.append("exact")
        needles = self._encoded(min_len=5)
        if any(n in lowered for n in needles):
            found.append("encoded")
        long_needles = [n for n in needles if len(n) >= 6]
        for chunk in bulk:
            # Metadata can only sit in a frame's marker segments (before the entropy-coded data) or after
            # its end marker; the rebuilt frame is searched there, not through the compressed pixels.
            low = (chunk[:BULK_HEAD] + b"\n" + chunk[-BULK_TAIL:]).lower()
            if any(n in low for n in long_needles):
                found.append("in_pixel_data")
                break
        return found

    def _encoded(self, min_len: int) -> set[bytes]:
        """Every identifying value (and each word of it) encoded in every character set, lower-cased."""
        out: set[bytes] = set()
        values: set[str] = set()
        for s in self.strict_parts:
            values.add(s)
            values.update(p for p in re.split(r"[\^= ,]", s) if p and not token_ok(p))
        for s in values:
            out.update(b for b in _encodings(s) if len(b) >= min_len)
        return out


_ASCII_CODECS = ("ascii", "utf_16_le", "utf_16_be")
BULK_HEAD, BULK_TAIL = 65536, 4096
_DIGIT = re.compile(r"\d")


@functools.lru_cache(maxsize=4096)
def _encodings(s: str) -> frozenset[bytes]:
    """``s`` and its normalised spellings in every character set, lower-cased (the files of a case
    repeat the same names, so this is computed once per value)."""
    out: set[bytes] = set()
    for v in {s.lower(), *normalise(s)}:
        for codec in _ASCII_CODECS if v.isascii() else CODECS:
            with contextlib.suppress(UnicodeError, LookupError):
                out.add(v.encode(codec).lower())
    return frozenset(out)


@functools.lru_cache(maxsize=4096)
def _date_forms(y: int, m: int, d: int) -> tuple[str, ...]:
    return tuple(f.casefold() for f in date_forms(y, m, d))


def _bounded(hay: str, needle: str) -> bool:
    """``needle`` occurs in ``hay`` with no letter or digit directly on either side."""
    start = hay.find(needle)
    while start != -1:
        end = start + len(needle)
        before = hay[start - 1] if start else " "
        after = hay[end] if end < len(hay) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        start = hay.find(needle, start + 1)
    return False


def check_secrets(secrets: Secrets, text_values: list[str], data: bytes, bulk: list[bytes]) -> None:
    found = secrets.found_in(text_values, data, bulk)
    if found:
        raise Quarantine(IDENTIFIER_SURVIVED, "input value(s) found in output: " + ", ".join(found))


class StructureScanner:
    """Walks every element header of the encoded (Explicit VR Little Endian) dataset.

    Lengths must chain exactly to the end, tags ascend within each dataset, and every tag at every
    depth must be one the builder may write (``allowed``) — a second, independent check of the
    allow-list on the bytes that actually leave.
    """

    def __init__(self, buf: bytes, allowed: frozenset[int]) -> None:
        self.buf = buf
        self.allowed = allowed

    @staticmethod
    def _fail(why: str) -> Quarantine:
        return Quarantine(STRUCTURE_CHECK_FAILED, why)

    def dataset(self, pos: int, limit: int, in_item: bool) -> int:
        buf = self.buf
        previous = -1
        while pos < limit:
            if pos + 8 > limit:
                raise self._fail("partial element header")
            group, element = struct.unpack_from("<HH", buf, pos)
            tag = (group << 16) | element
            if tag == ITEM_END:
                if not in_item:
                    raise self._fail("unexpected item delimiter")
                return pos + 8
            if tag <= previous:
                raise self._fail("tags not ascending")
            previous = tag
            if tag not in self.allowed:
                raise self._fail("element outside the allow-list in output")
            vr = buf[pos + 4 : pos + 6].decode("ascii", "replace")
            if vr in LONG_LENGTH_VRS:
                (length,) = struct.unpack_from("<L", buf, pos + 8)
                pos += 12
            else:
                (length,) = struct.unpack_from("<H", buf, pos + 6)
                pos += 8
            if length == UNDEFINED:
                pos = self.items(pos, limit, parse=vr == "SQ")
            else:
                if pos + length > limit:
                    raise self._fail("value runs past the end")
                pos += length
        if in_item:
            raise self._fail("missing item delimiter")
        return pos

    def items(self, pos: int, limit: int, parse: bool) -> int:
        buf = self.buf
        while True:
            if pos + 8 > limit:
                raise self._fail("sequence runs past the end")
            group, element, length = struct.unpack_from("<HHL", buf, pos)
            tag = (group << 16) | element
            pos += 8
            if tag == SEQUENCE_END:
                return pos
            if tag != ITEM:
                raise self._fail("expected an item")
            if parse:
                if length != UNDEFINED:
                    raise self._fail("defined-length item")
                pos = self.dataset(pos, limit, True)
            else:
                if length == UNDEFINED or pos + length > limit:
                    raise self._fail("bad fragment")
                pos += length


def check_structure(body: bytes, start: int, allowed: frozenset[int]) -> None:
    scanner = StructureScanner(body, allowed)
    try:
        end = scanner.dataset(start, len(body), False)
    except struct.error as exc:
        raise Quarantine(STRUCTURE_CHECK_FAILED, "malformed element header") from exc
    if end != len(body):
        raise Quarantine(STRUCTURE_CHECK_FAILED, "trailing bytes after dataset")
