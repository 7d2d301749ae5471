"""Pure rules of the gateway: who sees what, what a case may become, how series are ordered."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from casebook_events import CaseSnapshot, CaseUpdated
from casebook_events.lifecycle import Status, Visibility, can_submit

# The text fields of a case, in the order of the edit form (each one is frozen into a revision).
TEXT_FIELDS = ("title", "presentation", "patient_age", "patient_sex", "systems", "tags", "diagnosis",
               "diagnostic_certainty", "discussion")
ADULT_AGE = 18


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
    return viewer.is_editor and case["visibility"] == Visibility.PUBLIC


def sees_current_version(case: Mapping[str, Any], viewer: Viewer) -> bool:
    """Owners and editors see the latest text; others see the approved version while an edit is reviewed."""
    return (viewer.id is not None and case["owner_id"] == viewer.id) or viewer.is_editor


def moderation_status(status: str) -> str:
    """The `moderation.status` of a case: where its latest submission stands."""
    shown: dict[str, str] = {Status.SUBMITTED: "pending", Status.IN_REVIEW: "in_review",
                             Status.APPROVED: "approved", Status.REJECTED: "rejected"}
    return shown.get(status, "not_submitted")


def limit_code(visibility: str) -> str:
    return f"{visibility}_limit_reached"


def can_publish(status: str) -> bool:
    """A case may be (re)submitted from draft, unlisted, rejected, or approved (an edited approved case)."""
    return can_submit(status)


def changed_fields(case: Mapping[str, Any], changes: Mapping[str, Any]) -> list[str]:
    """The fields of `changes` whose value differs from the case's, in the order given."""
    return [k for k, v in changes.items() if case[k] != v]


def case_updated(case: Mapping[str, Any], changed: list[str]) -> CaseUpdated:
    """The event of an owner's change (`changed`: the fields it touched), from the case as it now stands."""
    return CaseUpdated(case_id=case["id"], owner_id=case["owner_id"], revision=case["revision"],
                       status=case["status"], visibility=case["visibility"], listed_public=case["listed_public"],
                       changed=changed)


def deid_report_document(stored: bytes | None, *, status: str, reasons: Iterable[Any] | None) -> dict[str, Any]:
    """What an image's de-identification report says: the anonymiser's JSON document beside the image, or,
    when there is none (an upload quarantined before any was written), its status and quarantine reasons.

    Raises:
        ValueError: the stored document is not JSON.
    """
    doc = json.loads(stored) if stored is not None else None
    if isinstance(doc, dict):
        return doc
    return {"status": status, "quarantine_reasons": list(reasons or [])}


def public_age(age: int | None) -> int | str | None:
    """An age as readers see it: children exactly; adults to the nearest 5 years (never shown as 90, which
    would read as the open band); `90+` for anyone older than 89 (HIPAA safe harbour)."""
    if age is None or age < ADULT_AGE:
        return age
    if age > 89:
        return "90+"
    return min(85, int(age / 5 + 0.5) * 5)


def completeness(case: Mapping[str, Any], studies: Iterable[Mapping[str, Any]], ready_images: int
                 ) -> dict[str, Any]:
    """How complete a case is, the way an editor scores it: each item counts once, and the findings
    count once per study (`findings:study-<position>`; `findings` when there is no study yet)."""
    missing: list[str] = []
    total = 0
    for name, present in (("presentation", bool(str(case.get("presentation") or "").strip())),
                          ("patient_age", case.get("patient_age") is not None),
                          ("patient_sex", case.get("patient_sex") is not None),
                          ("systems", bool(case.get("systems")))):
        total += 1
        if not present:
            missing.append(name)
    study_list = list(studies)
    if not study_list:
        total += 1
        missing.append("findings")
    for s in study_list:
        total += 1
        if not str(s.get("findings") or "").strip():
            missing.append(f"findings:study-{s['position']}")
    for name, present in (("discussion", bool(str(case.get("discussion") or "").strip())),
                          ("tags", bool(case.get("tags"))), ("ready_image", ready_images > 0)):
        total += 1
        if not present:
            missing.append(name)
    return {"percent": round(100 * (total - len(missing)) / total), "missing": missing}


def text_bytes(snapshot: CaseSnapshot) -> int:
    """UTF-8 bytes of all of a case's text (every field, label and study's findings): what a submission carries
    about three times over (the text, and the changed fields before and after)."""
    total = 0
    for value in snapshot.model_dump().values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                total += len(item.encode())
    return total


def freeze(case: Mapping[str, Any], studies: Iterable[Mapping[str, Any]], image_ids: Iterable[str]
           ) -> dict[str, Any]:
    """The frozen content of a revision: the text, the studies with their findings, the exact image set."""
    return {**{k: case[k] for k in TEXT_FIELDS},
            "studies": [{"id": s["id"], "position": s["position"], "modality": s["modality"],
                         "findings": s["findings"]} for s in studies],
            "image_ids": list(image_ids)}


def revision_diff(base: Mapping[str, Any] | None, new: Mapping[str, Any], base_revision: int | None = None
                  ) -> dict[str, Any]:
    """What changed from the last approved revision (`base`; None: nothing approved yet, all is new):
    text fields with before and after, studies added / removed / changed, images added / removed."""
    old: Mapping[str, Any] = base or {}
    fields = [{"field": k, "before": old.get(k), "after": new.get(k)} for k in TEXT_FIELDS
              if base is None or old.get(k) != new.get(k)]
    old_studies = {s["id"]: s for s in old.get("studies", [])}
    new_studies = {s["id"]: s for s in new.get("studies", [])}
    old_images, new_images = list(old.get("image_ids", [])), list(new.get("image_ids", []))
    return {
        "base_revision": base_revision,
        "fields": fields,
        "studies_added": [i for i in new_studies if i not in old_studies],
        "studies_removed": [i for i in old_studies if i not in new_studies],
        "studies_changed": [i for i in new_studies if i in old_studies and new_studies[i] != old_studies[i]],
        "images_added": [i for i in new_images if i not in set(old_images)],
        "images_removed": [i for i in old_images if i not in set(new_images)],
    }


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
