"""Pure rules of the anonymiser around the de-identification core: keys, digests, event contents."""

from __future__ import annotations

import hashlib
from typing import Any

from casebook_anonymiser.deid import CaseKey
from casebook_platform.identifiers import identifier_digests


def case_key(secret: str, key_id: str, case_id: str) -> CaseKey:
    """One case → one key: consistent UIDs, one date offset, one pseudonym across its files."""
    return CaseKey(secret=secret.encode(), key_id=key_id, case_id=case_id)


def digests_of(case_id: str, identifiers: list[str]) -> list[str]:
    """Salted digests of the input's identifiers; person names (DICOM PN, with `^`) also word by word."""
    names = [v for v in identifiers if "^" in v]
    return identifier_digests(case_id, names=[n.replace("^", " ") for n in names],
                              whole=[v for v in identifiers if "^" not in v])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def anonymised_fields(info: dict[str, Any]) -> dict[str, Any]:
    """The moderation-relevant facts of a de-identified image, typed for the event."""

    def as_int(v: Any) -> int | None:
        try:
            return int(v) if v is not None and v != "" else None
        except (TypeError, ValueError):
            return None

    return {
        "modality": (str(info["modality"])[:16] or None) if info.get("modality") else None,
        "series_uid": str(info["series_uid"]) if info.get("series_uid") else None,
        "series_number": as_int(info.get("series_number")),
        "series_description": (str(info["series_description"])[:200] or None)
        if info.get("series_description") else None,
        "instance_number": as_int(info.get("instance_number")),
        "rows": as_int(info.get("rows")),
        "columns": as_int(info.get("columns")),
        "frames": as_int(info.get("frames")) or 1,
        "actions": [str(a) for a in info.get("actions", [])][:50],
        "flags": [str(f) for f in info.get("flags", [])][:50],
    }
