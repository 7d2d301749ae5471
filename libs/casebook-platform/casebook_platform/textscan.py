"""Scan free case text (titles, histories, captions) for identifiers.

The patterns are deliberately shaped around radiology prose: measurements ("3 cm", "5 mm"),
vertebral levels ("C5-C6"), sequences ("T2"), ages ("45-year-old") and bare years never match,
while dates, long numbers, phone numbers, e-mail and postal addresses do.  Known identifiers
from the case's own DICOM headers are matched exactly (case-insensitive, on word boundaries).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

KINDS = ("known_identifier", "email", "date", "address", "postcode", "phone", "mrn")
_PRIORITY = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class TextFinding:
    kind: str
    start: int
    end: int
    excerpt: str


_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        )
    )
    for m in names
}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))

_B = r"(?<![A-Za-z0-9])"  # left word boundary that also treats digits as word characters
_E = r"(?![A-Za-z0-9])"

# (regex, group indices for year, month, day) – month may be a name
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, str, str]], ...] = (
    (re.compile(_B + r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})" + _E), ("y", "m", "d")),
    (re.compile(_B + r"(?P<d>\d{1,2})[-/.](?P<m>\d{1,2})[-/.](?P<y>\d{4}|\d{2})" + _E), ("y", "m", "d")),
    (re.compile(_B + r"(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})" + _E), ("y", "m", "d")),
    (
        re.compile(
            _B
            + r"(?P<d>\d{1,2})(?:st|nd|rd|th)?[ \-]+(?:of[ ]+)?(?P<m>"
            + _MONTH_ALT
            + r")\.?,?[ \-]+(?P<y>\d{4}|'\d{2})"
            + _E,
            re.IGNORECASE,
        ),
        ("y", "m", "d"),
    ),
    (
        re.compile(
            _B + r"(?P<m>" + _MONTH_ALT + r")\.?[ ]+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?[ ]+(?P<y>\d{4})" + _E,
            re.IGNORECASE,
        ),
        ("y", "m", "d"),
    ),
    (re.compile(_B + r"(?P<m>" + _MONTH_ALT + r")\.?,?[ ]+(?P<y>(?:19|20)\d{2})" + _E, re.IGNORECASE), ("y", "m", "")),
)

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Phone: optional country code, optional area code in brackets, then digit groups separated by
# space/dot/dash; accepted only with >= 9 digits in total (see _phone_ok).
_PHONE_RE = re.compile(_B + r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,5}\)[ .\-]?)?\d{2,5}(?:[ .\-]\d{2,5}){1,3}" + _E)
_MRN_RE = re.compile(_B + r"(?:\d{6,}|[A-Za-z]{1,3}-?\d{5,}|\d{3}[ \-]\d{3}[ \-]\d{4})" + _E)
_MRN_LABEL_RE = re.compile(
    r"\b(?:MRN|NHS(?:\s+(?:no|number))?|hospital\s+(?:no|number)|patient\s+id|accession(?:\s+(?:no|number))?)"
    r"\s*[:#.]?\s*(?P<id>[A-Za-z0-9\-]{4,})",
    re.IGNORECASE,
)
_STREET_SUFFIX = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|close|way|court|ct|place|pl|"
    r"terrace|crescent|square|sq|gardens|grove|parkway|pkwy|highway|hwy"
)
_ADDRESS_RE = re.compile(
    _B + r"\d{1,5}[A-Za-z]?,?\s+(?:[A-Z][A-Za-z'\-]+\s+){1,3}(?:" + _STREET_SUFFIX + r")\b\.?",
    re.IGNORECASE,
)
# UK postcodes (upper-case as written on letters) and US ZIP+4 / state + ZIP.
_UK_POSTCODE_RE = re.compile(r"\b(?:GIR ?0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})\b")
_US_ZIP4_RE = re.compile(_B + r"\d{5}-\d{4}" + _E)
_US_STATE_ZIP_RE = re.compile(
    r"\b(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|"
    r"T[NX]|UT|V[AT]|W[AIVY])\s+\d{5}(?:-\d{4})?" + _E
)


def _valid_date(y: str, m: str, d: str) -> bool:
    try:
        year = int(y.lstrip("'"))
        if year < 100:
            year += 2000 if year < 50 else 1900
        month = _MONTHS[m.lower()] if m and not m.isdigit() else int(m)
        day = int(d) if d else 1
        date(year, month, day)
    except (ValueError, KeyError):
        return False
    return 1900 <= year <= 2100


def _phone_ok(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return 9 <= digits <= 15


def _known_patterns(known: Iterable[str]) -> list[re.Pattern[str]]:
    out = []
    for ident in dict.fromkeys(k.strip() for k in known if k):
        if len(ident) < 3 or not any(c.isalnum() for c in ident):
            continue
        out.append(re.compile(_B + re.escape(ident) + _E, re.IGNORECASE))
    return out


def scan_text(text: str, *, known_identifiers: Iterable[str] = ()) -> list[TextFinding]:
    """Return identifier-like spans in ``text``, most specific kind first for overlapping spans."""
    found: list[TextFinding] = []

    def add(kind: str, start: int, end: int) -> None:
        found.append(TextFinding(kind, start, end, text[start:end]))

    for pattern in _known_patterns(known_identifiers):
        for m in pattern.finditer(text):
            add("known_identifier", m.start(), m.end())
    for m in _EMAIL_RE.finditer(text):
        add("email", m.start(), m.end())
    for pattern, (yk, mk, dk) in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            if _valid_date(m.group(yk), m.group(mk), m.group(dk) if dk else ""):
                add("date", m.start(), m.end())
    for m in _PHONE_RE.finditer(text):
        if _phone_ok(m.group(0)):
            add("phone", m.start(), m.end())
    for m in _ADDRESS_RE.finditer(text):
        add("address", m.start(), m.end())
    for pattern in (_UK_POSTCODE_RE, _US_ZIP4_RE, _US_STATE_ZIP_RE):
        for m in pattern.finditer(text):
            add("postcode", m.start(), m.end())
    for m in _MRN_RE.finditer(text):
        add("mrn", m.start(), m.end())
    for m in _MRN_LABEL_RE.finditer(text):
        if any(c.isdigit() for c in m.group("id")):
            add("mrn", m.start("id"), m.end("id"))
    return _dedupe(found)


def _dedupe(found: list[TextFinding]) -> list[TextFinding]:
    """Drop findings contained in a higher-priority (or longer same-kind) finding."""
    ordered = sorted(found, key=lambda f: (_PRIORITY[f.kind], -(f.end - f.start), f.start))
    kept: list[TextFinding] = []
    for f in ordered:
        if any(k.start <= f.start and f.end <= k.end for k in kept):
            continue
        kept.append(f)
    return sorted(kept, key=lambda f: (f.start, f.end))
