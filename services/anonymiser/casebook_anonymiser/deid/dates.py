"""Date shifting (Retain Longitudinal Temporal Information with Modified Dates) and age banding.

Only the calendar part moves; times of day and DT time-zone suffixes are kept because intervals
within a case are what teaching needs and a time of day alone does not identify anyone.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_DA_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# Pre-3.0 ACR-NEMA style dates still found in old archives: YYYY.MM.DD
_DA_LEGACY_RE = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")
_DT_RE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?([0-9.]*)([+-]\d{4})?$")
_AGE_RE = re.compile(r"^(\d{3})([DWMY])$")


def _shift(year: int, month: int, day: int, offset_days: int) -> date:
    shifted = date(year, month, day) + timedelta(days=offset_days)
    if shifted.year < 1:  # pragma: no cover - offsets are a few years, inputs are >= 0001
        raise ValueError("date out of range")
    return shifted


def shift_da(value: str, offset_days: int) -> str | None:
    """Shift one DA value; ``None`` when it is not a parseable date (caller removes it)."""
    v = value.strip()
    m = _DA_RE.match(v) or _DA_LEGACY_RE.match(v)
    if not m:
        return None
    try:
        shifted = _shift(int(m.group(1)), int(m.group(2)), int(m.group(3)), offset_days)
    except ValueError:
        return None
    return shifted.strftime("%Y%m%d")


def shift_dt(value: str, offset_days: int) -> str | None:
    """Shift one DT value keeping its precision, time part and UTC offset suffix.

    Partial dates (YYYY or YYYYMM) are anchored on the first day of the period before shifting and
    written back at the same precision, so no extra precision is invented.
    """
    v = value.strip()
    m = _DT_RE.match(v)
    if not m:
        return None
    year, month, day, rest, tz = m.groups()
    if rest and not day:
        return None
    try:
        shifted = _shift(int(year), int(month or 1), int(day or 1), offset_days)
    except ValueError:
        return None
    if day:
        out = shifted.strftime("%Y%m%d")
    elif month:
        out = shifted.strftime("%Y%m")
    else:
        out = f"{shifted.year:04d}"
    return out + (rest or "") + (tz or "")


def band_age(value: str) -> str | None:
    """Coarsen an AS value: adults to 5-year bands (floor), anyone over 89 to ``090Y``.

    Children's ages (under 18 years, or given in days/weeks/months) are kept as they are clinically
    meaningful and not identifying on their own.  ``None`` for unparseable values.
    """
    m = _AGE_RE.match(value.strip())
    if not m:
        return None
    number, unit = int(m.group(1)), m.group(2)
    if unit != "Y" or number < 18:
        return f"{number:03d}{unit}"
    if number > 89:
        return "090Y"
    return f"{number // 5 * 5:03d}Y"


