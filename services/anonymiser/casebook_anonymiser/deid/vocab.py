"""Kept free text is rebuilt from the imaging vocabulary: a word survives only if it is listed.

The vocabulary (``data/imaging_vocabulary.txt``, built by ``scripts/build_vocabulary.py``) holds
modality, anatomy, sequence, protocol, contrast and view words. Everything else goes: names,
dates, numbers that could be IDs, words in other scripts. Small measurements ("5mm", "1.5T",
"b1000") survive because teaching needs them and they identify no one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_DATA = Path(__file__).with_name("data") / "imaging_vocabulary.txt"
# Words are split on whitespace and on the separators scanners use in descriptions; '.', '/' and
# '-' stay inside a token so that "12.03.2019" or "03/12/19" is judged (and dropped) whole.
_SPLIT = re.compile(r"[\s_,;:()\[\]{}<>^\\|\"'=&#!?]+")
# A small number with an optional imaging unit: slice thickness, field strength, b-value.
_MEASURE = re.compile(r"^\d{1,3}(\.\d)?(mm|cm|ms|s|t|kv|mas|mhz|deg|%)?$", re.IGNORECASE)
_B_VALUE = re.compile(r"^b\d{1,4}$", re.IGNORECASE)
MAX_TOKENS = 16


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    words = (line.strip().lower() for line in _DATA.read_text(encoding="utf-8").splitlines())
    return frozenset(w for w in words if w and not w.startswith("#"))


def token_ok(token: str) -> bool:
    """Whether one word may appear in a kept description."""
    if not token.isascii():
        return False
    t = token.lower()
    return t in vocabulary() or _MEASURE.match(t) is not None or _B_VALUE.match(t) is not None


def clean_text(text: str, *, upper: bool = False) -> str | None:
    """The description rebuilt from vocabulary words only, or None when nothing is left."""
    kept = [t for t in _SPLIT.split(text) if t and token_ok(t)][:MAX_TOKENS]
    if not kept:
        return None
    out = " ".join(kept)
    return out.upper() if upper else out


def clean_code(value: str) -> str | None:
    """A code string (CS) value kept only when every part of it is a vocabulary word."""
    v = value.strip()
    if not v or len(v) > 16 or re.fullmatch(r"[A-Z0-9 _]+", v) is None:
        return None
    if v.lower() in vocabulary():
        return v
    parts = [p for p in re.split(r"[ _]+", v) if p]
    return v if parts and all(token_ok(p) for p in parts) else None
