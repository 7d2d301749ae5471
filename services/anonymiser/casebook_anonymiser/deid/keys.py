"""Keyed pseudonymisation: the case key and everything derived from it.

All derivations are HMAC-SHA256 under the platform secret with a distinct label per purpose, so
knowing one derived value (say the date offset) reveals nothing about another (the pseudonym) and
nothing can be recomputed without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import cached_property, lru_cache

DATE_OFFSET_MIN = -3650
DATE_OFFSET_MAX = -365

# Fixed, non-secret identity of this implementation in the file meta (PS3.10 7.1).
IMPLEMENTATION_CLASS_UID = "2.25." + str(int.from_bytes(hashlib.sha256(b"casebook-deid").digest()[:16], "big"))
IMPLEMENTATION_VERSION_NAME = "CASEBOOK_DEID_1"


def _mac(secret: bytes, label: bytes, value: bytes) -> bytes:
    return hmac.new(secret, label + b"\x00" + value, hashlib.sha256).digest()


@dataclass(frozen=True)
class CaseKey:
    """Pseudonymisation key for one teaching case.

    ``secret`` is the platform secret, ``key_id`` names it (recorded in the output so keys can be
    rotated), ``case_id`` scopes the date offset and the patient pseudonym: every file of a case
    shifts by the same number of days so intervals survive.
    """

    secret: bytes
    key_id: str
    case_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < 16:
            raise ValueError("CaseKey.secret must be at least 16 bytes")
        if not self.case_id:
            raise ValueError("CaseKey.case_id must not be empty")

    def __repr__(self) -> str:  # never print the secret
        return f"CaseKey(key_id={self.key_id!r}, case_id={self.case_id!r})"

    @cached_property
    def date_offset_days(self) -> int:
        """Keyed, deterministic offset in [DATE_OFFSET_MIN, DATE_OFFSET_MAX] days."""
        digest = _mac(self.secret, b"casebook/date-offset", self.case_id.encode("utf-8"))
        span = DATE_OFFSET_MAX - DATE_OFFSET_MIN + 1
        return DATE_OFFSET_MIN + int.from_bytes(digest[:8], "big") % span

    @cached_property
    def pseudonym(self) -> str:
        """Short case token used for PatientName/PatientID (upper-case hex, 10 chars)."""
        return _mac(self.secret, b"casebook/patient", self.case_id.encode("utf-8")).hex()[:10].upper()

    @property
    def patient_name(self) -> str:
        return f"CASEBOOK^{self.pseudonym}"

    @property
    def patient_id(self) -> str:
        return f"CB{self.pseudonym}"

    def uid(self, original: str) -> str:
        """Replacement for an instance UID.

        Keyed on the secret and the original UID only (not the case), so references stay
        consistent within a file, across the files of a case and across follow-up cases of the
        same study; without the secret the mapping can be neither reversed nor reproduced.
        """
        return _uid(self.secret, original)


@lru_cache(maxsize=65536)
def _uid(secret: bytes, original: str) -> str:
    digest = _mac(secret, b"casebook/uid", original.strip().encode("ascii", "replace"))
    # 2.25 + 128-bit integer: at most 44 characters, well under the 64 allowed for UI.
    return "2.25." + str(int.from_bytes(digest[:16], "big"))
