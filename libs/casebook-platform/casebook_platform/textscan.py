"""Flags patient identifiers in free text (case text): dates, record numbers, phones, e-mails, addresses.

Deliberately conservative about medical text: sizes ("3 cm"), levels ("C5-C6"), ages ("45-year-old")
and sequences ("T2") are not identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TextFinding:
    """One suspected identifier in a text."""

    kind: str
    start: int
    end: int
    excerpt: str


_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?"
           r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("date", re.compile(r"\b(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])\b")),
    ("date", re.compile(r"\b(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|1[0-2])[-/.](?:19|20)?\d{2}\b")),
    ("date", re.compile(rf"\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+(?:19|20)\d{{2}}\b", re.I)),
    ("date", re.compile(rf"\b{_MONTHS}\.?\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b", re.I)),
    ("phone", re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?)?"
                         r"\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?![\w.])")),
    ("mrn", re.compile(r"\b(?:MRN|NHS|ID|patient\s+(?:no|number|id))\s*[:#]?\s*[A-Z]{0,3}\d{4,}\b", re.I)),
    ("mrn", re.compile(r"(?<![\w.])[A-Z]{0,3}\d{6,}(?![\w.])")),
    ("address", re.compile(r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|"
                           r"Boulevard|Blvd|Close|Court|Ct|Way|Place|Pl|Square|Sq|Terrace)\b\.?")),
    ("postcode", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b")),
    ("postcode", re.compile(r"\b\d{5}-\d{4}\b")),
]


def scan_text(text: str, *, known_identifiers: Iterable[str] = ()) -> list[TextFinding]:
    """Suspected identifiers in `text`, in order of position."""
    found: dict[tuple[int, int], TextFinding] = {}
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            span = (m.start(), m.end())
            if not any(s <= span[0] and span[1] <= e for s, e in found):
                found[span] = TextFinding(kind, m.start(), m.end(), m.group(0))
    folded = text.casefold()
    for ident in known_identifiers:
        needle = ident.strip().casefold()
        if len(needle) < 3:
            continue
        start = folded.find(needle)
        while start >= 0:
            found[(start, start + len(needle))] = TextFinding("known_identifier", start, start + len(needle),
                                                              text[start:start + len(needle)])
            start = folded.find(needle, start + 1)
    return sorted(found.values(), key=lambda f: (f.start, f.end))
