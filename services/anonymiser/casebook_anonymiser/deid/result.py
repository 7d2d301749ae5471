"""Result type and the stable reason codes moderation and the API rely on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# Stable reason codes (strings are part of the service contract; add, never rename).
INVALID_DICOM = "invalid_dicom"
INVALID_IMAGE = "invalid_image"
UNSUPPORTED_MEDIA = "unsupported_media"
BURNED_IN_TEXT = "burned_in_text"
IDENTIFIER_SURVIVED = "identifier_survived"
ENCAPSULATED_UNVERIFIABLE = "encapsulated_unverifiable"
OCR_UNAVAILABLE = "ocr_unavailable"
OCR_FRAME_LIMIT = "ocr_frame_limit"
STRUCTURE_CHECK_FAILED = "structure_check_failed"
PROCESSING_ERROR = "processing_error"
PROCESSING_TIMEOUT = "processing_timeout"  # set by the service's worker pool, not by this package
TOO_MANY_IDENTIFIERS = "too_many_identifiers"  # set by the service: more identifying words than an event carries

REASON_CODES: frozenset[str] = frozenset(
    {
        INVALID_DICOM,
        INVALID_IMAGE,
        UNSUPPORTED_MEDIA,
        BURNED_IN_TEXT,
        IDENTIFIER_SURVIVED,
        ENCAPSULATED_UNVERIFIABLE,
        OCR_UNAVAILABLE,
        OCR_FRAME_LIMIT,
        STRUCTURE_CHECK_FAILED,
        PROCESSING_ERROR,
        PROCESSING_TIMEOUT,
        TOO_MANY_IDENTIFIERS,
    }
)


@dataclass
class DeidResult:
    """Outcome of de-identifying one object.

    ``identifiers`` are values seen in the *input* (names, IDs, ...) so the caller can scan the
    case's free text; they must never be persisted.
    """

    status: Literal["ready", "quarantined"]
    reasons: list[str]
    data: bytes | None
    media_type: str
    info: dict[str, Any] = field(default_factory=dict)
    identifiers: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # keep identifiers and payload out of logs
        size = len(self.data) if self.data is not None else None
        return (
            f"DeidResult(status={self.status!r}, reasons={self.reasons!r}, "
            f"media_type={self.media_type!r}, bytes={size})"
        )


class Quarantine(Exception):
    """Raised internally to stop processing with a reason code; converted to a DeidResult."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason if not detail else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def quarantined(
    reason: str, media_type: str, info: dict[str, Any] | None = None, identifiers: list[str] | None = None
) -> DeidResult:
    info = dict(info or {})
    # The owner's de-identification report: the reason code only (details may quote input values).
    info.setdefault("report", {"quarantine_reasons": [reason]})
    return DeidResult("quarantined", [reason], None, media_type, info, identifiers or [])
