"""Pure rules of the anonymiser around the de-identification core: keys, digests, event contents."""

from __future__ import annotations

import hashlib
from typing import Any

from casebook_anonymiser.deid import CaseKey
from casebook_anonymiser.deid.result import TOO_MANY_IDENTIFIERS
from casebook_anonymiser.worker import Outcome
from casebook_events.limits import MAX_IDENTIFIER_DIGESTS
from casebook_platform.identifiers import identifier_digests


def case_key(secret: str, key_id: str, case_id: str) -> CaseKey:
    """One case → one key: consistent UIDs, one date offset, one pseudonym across its files."""
    return CaseKey(secret=secret.encode(), key_id=key_id, case_id=case_id)


def digests_of(case_id: str, identifiers: list[str]) -> list[str]:
    """Salted digests of the input's identifiers; person names (DICOM PN, with `^`) also word by word."""
    names = [v for v in identifiers if "^" in v]
    return identifier_digests(case_id, names=[n.replace("^", " ") for n in names],
                              whole=[v for v in identifiers if "^" not in v])


def digests_fit(digests: list[str]) -> bool:
    """Whether `case.anonymised` can carry them under its stated size bound (past it the image is quarantined)."""
    return len(digests) <= MAX_IDENTIFIER_DIGESTS


def announced(result: Outcome, digests: list[str]) -> Outcome:
    """The outcome to announce for `result`, whose input's identifiers have these digests.

    A ready result whose digests would not fit `case.anonymised` is quarantined `too_many_identifiers`
    instead (its file is never stored); any other result is announced as it is.
    """
    if result.status != "ready" or digests_fit(digests):
        return result
    return Outcome(status="quarantined", reasons=[TOO_MANY_IDENTIFIERS], media_type=result.media_type,
                   info=result.info)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


REPORT_SUFFIX = ".deid-report.json"
_REPORT_LISTS = ("kept", "removed", "rewritten", "pixels", "quarantine_reasons")


def report_key(case_id: str, image_id: str) -> str:
    """Where the owner's de-identification report of an image lives (beside the image, same prefix)."""
    return f"{case_id}/{image_id}{REPORT_SUFFIX}"


def report_document(info: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """What de-identification did to one image, by attribute keyword only (never a removed value)."""
    report = info.get("report") or {}
    doc: dict[str, Any] = {k: [str(v)[:80] for v in report.get(k, [])][:1000] for k in _REPORT_LISTS}
    doc["quarantine_reasons"] = sorted(set(doc["quarantine_reasons"]) | set(reasons))
    doc["text_regions_redacted"] = [
        {"x0": int(r[0]), "y0": int(r[1]), "x1": int(r[2]), "y1": int(r[3])}
        for r in report.get("text_regions_redacted", [])[:1000]
    ]
    doc["views_checked"] = int(report.get("views_checked", 0) or 0)
    doc["status"] = "quarantined" if doc["quarantine_reasons"] else "ready"
    return doc


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
