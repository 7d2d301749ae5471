"""Pure rules of the gateway: who sees what, what a case may become, how series are ordered."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# status values (API.md): draft, unlisted, submitted, in_review, approved, rejected
PUBLISHED_STATES = frozenset({"submitted", "in_review", "approved", "rejected"})


@dataclass(frozen=True)
class Viewer:
    """Who is asking (None id for anonymous callers)."""

    id: str | None
    roles: frozenset[str]

    @property
    def is_editor(self) -> bool:
        return "editor" in self.roles or "admin" in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def can_view(case: Mapping[str, Any], viewer: Viewer) -> bool:
    """Owners see all their cases; editors see cases sent to moderation; everyone sees approved public cases.

    Unlisted cases are seen by others only through their share link (not through this rule).
    """
    if viewer.id is not None and case["owner_id"] == viewer.id:
        return True
    if viewer.is_admin:
        return True
    if bool(case["listed_public"]):
        return True
    return viewer.is_editor and case["visibility"] == "public"


def sees_current_version(case: Mapping[str, Any], viewer: Viewer) -> bool:
    """Owners and editors see the latest text; others see the approved version while an edit is reviewed."""
    return (viewer.id is not None and case["owner_id"] == viewer.id) or viewer.is_editor


def limit_code(visibility: str) -> str:
    return f"{visibility}_limit_reached"


def can_publish(status: str) -> bool:
    """A case may be (re)submitted from draft, unlisted, rejected, or approved (an edited approved case)."""
    return status in {"draft", "unlisted", "rejected", "approved"}


def series_key(image: Mapping[str, Any]) -> tuple[Any, ...]:
    """Series of a study: by DICOM series UID when known, else each upload file forms its own group."""
    return (image.get("series_uid") or f"upload:{image['id']}",)


def order_series(images: Iterable[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Images grouped into series; series by number then arrival; images by instance number then arrival."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for im in images:
        groups.setdefault(series_key(im), []).append(im)
    ordered = []
    for members in groups.values():
        members.sort(key=lambda i: (i.get("instance_number") is None, i.get("instance_number") or 0, i["seq"]))
        ordered.append(members)
    ordered.sort(key=lambda g: (g[0].get("series_number") is None, g[0].get("series_number") or 0,
                                min(i["seq"] for i in g)))
    return ordered


def fingerprint(content: Any) -> str:
    """Digest of what an export would contain: an unchanged case yields the same fingerprint."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


_ALLOWED_CONTROL = {"\n", "\r", "\t"}


def has_control_characters(text: str) -> bool:
    """True when `text` carries control characters other than newlines and tabs."""
    return any((ord(c) < 32 or 0x7F <= ord(c) < 0xA0) and c not in _ALLOWED_CONTROL for c in text)
