"""Pure rules of moderation: the automatic publication checks, the claim rule and what a decision announces.

Every check has a stable code (the contract with the gateway and the contributor's UI) and a message that
says what to fix. Messages never quote the suspected identifier itself: rejections travel as events and
end up in logs, so they name the field and the kind of identifier only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from casebook_events import CaseApproved, CaseRejected, CaseSnapshot, Reason, lifecycle
from casebook_platform.identifiers import find_digested
from casebook_platform.textscan import scan_text

ACCEPTED_CERTAINTY = frozenset({"certain", "almost_certain"})
BURNED_IN_PREFIX = "burned_in_text"
# The text fields of a case, in the order a contributor sees them on the edit form.
TEXT_FIELDS = ("title", "presentation", "diagnosis", "discussion", "findings")

ImageStatus = Literal["ready", "quarantined"]
# The states of an item still in the queue (being checked, or waiting for an editor).
OPEN_STATES = ("checking", "waiting")
# What an image report says about the image itself; a later report that omits one keeps the earlier value.
IMAGE_FACTS = ("study_id", "modality", "series_uid", "rows", "columns", "frames")


@dataclass(frozen=True)
class ImageState:
    """What the anonymiser reported about one image."""

    image_id: str
    status: ImageStatus
    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    identifier_digests: tuple[str, ...] = ()
    study_id: str | None = None
    modality: str | None = None
    series_uid: str | None = None
    rows: int | None = None
    columns: int | None = None
    frames: int | None = None


@dataclass(frozen=True)
class Check:
    """The outcome of one automatic check."""

    code: str
    passed: bool
    message: str


def _check(code: str, failure: str | None, ok: str) -> Check:
    return Check(code=code, passed=failure is None, message=failure or ok)


def case_texts(case: CaseSnapshot) -> list[tuple[str, str]]:
    """(field, text) pairs of every free-text field; each study's findings is its own entry."""
    out = [(name, str(getattr(case, name))) for name in TEXT_FIELDS if name != "findings"]
    out += [(f"findings of study {i}", text) for i, text in enumerate(case.findings, start=1)]
    return [(name, text) for name, text in out if text.strip()]


def identifier_problems(case_id: str, case: CaseSnapshot, digests: Iterable[str]) -> list[str]:
    """'<kind> in <field>' for every suspected identifier, in field order (kinds only, never the text)."""
    wanted = sorted(set(digests))
    problems: list[str] = []
    for name, text in case_texts(case):
        kinds = sorted({f.kind for f in scan_text(text)})
        if find_digested(text, salt=case_id, digests=wanted):
            kinds.append("a name or identifier from the images")
        problems += [f"{kind.replace('_', ' ')} in the {name}" for kind in kinds]
    return problems


def _certainty(case: CaseSnapshot) -> Check:
    bad = case.diagnostic_certainty not in ACCEPTED_CERTAINTY
    return _check("certainty_too_low",
                  "Diagnostic certainty must be 'certain' or 'almost certain' for a public case; confirm the "
                  "diagnosis (e.g. pathology or follow-up) or keep the case unlisted." if bad else None,
                  "Diagnostic certainty is sufficient.")


def _images(image_ids: Sequence[str], images: Mapping[str, ImageState]) -> list[Check]:
    quarantined = [images[i] for i in image_ids if images[i].status == "quarantined"]
    burned = [i for i in image_ids if any(f.startswith(BURNED_IN_PREFIX) for f in images[i].flags)]
    reasons = sorted({r for img in quarantined for r in img.reasons})
    return [
        _check("no_images", "Add at least one image to the case." if not image_ids else None,
               f"{len(image_ids)} image(s) attached."),
        _check("image_quarantined",
               f"{len(quarantined)} image(s) could not be de-identified ({', '.join(reasons) or 'unknown reason'}); "
               "remove or replace them." if quarantined else None,
               "Every image was de-identified."),
        _check("burned_in_text",
               f"{len(burned)} image(s) carry burned-in text or annotations; upload versions without overlays "
               "or annotations." if burned else None,
               "No burned-in text was detected."),
    ]


def run_checks(case_id: str, case: CaseSnapshot, image_ids: Sequence[str],
               images: Mapping[str, ImageState]) -> list[Check] | None:
    """Every automatic check, or None while some image of the submission has not been processed yet."""
    if any(i not in images for i in image_ids):
        return None
    digests = [d for img in images.values() for d in img.identifier_digests]
    problems = identifier_problems(case_id, case, digests)
    return [
        _certainty(case),
        _check("system_missing", "Choose at least one body system." if not case.systems else None,
               "Body system given."),
        _check("age_missing", "Give the patient's age in years." if case.patient_age is None else None,
               "Patient age given."),
        _check("sex_missing", "Give the patient's sex ('unknown' is accepted)." if case.patient_sex is None
               else None, "Patient sex given."),
        *_images(image_ids, images),
        _check("identifier_in_text",
               "Remove patient identifiers from the case text: " + "; ".join(problems) + "." if problems else None,
               "No patient identifiers found in the case text."),
    ]


def failures(checks: Iterable[Check]) -> list[Check]:
    """The checks that failed, in check order."""
    return [c for c in checks if not c.passed]


def claim_conflict(claimed_by: str | None, expires_at: datetime | None, editor_id: str, now: datetime) -> bool:
    """True when another editor holds an unexpired claim (the caller's own claim never conflicts)."""
    return claimed_by is not None and claimed_by != editor_id and expires_at is not None and expires_at > now


def decision_event(*, case_id: str, owner_id: str, revision: int, title: str, approve: bool,
                   editor_id: str | None, reasons: Sequence[Reason], now: datetime) -> CaseApproved | CaseRejected:
    """The event that announces a decision on revision `revision` (`editor_id` None: the automatic checks).

    Raises:
        ValueError: an approval without an editor (only an editor approves).
    """
    if approve:
        if editor_id is None:
            raise ValueError("an approval is always an editor's")
        return CaseApproved(case_id=case_id, owner_id=owner_id, editor_id=editor_id, revision=revision, title=title,
                            approved_at=now)
    return CaseRejected(case_id=case_id, owner_id=owner_id, editor_id=editor_id, revision=revision,
                        automatic=editor_id is None, reasons=list(reasons))


# Advisory image-quality checks: what editors push back for, shown to editors and the owner, never a reason
# to reject on their own (a single key image is a legitimate case).
MIN_TEACHING_PIXELS = 256  # shorter side; smaller images cannot show what a case teaches
CROSS_SECTIONAL = frozenset({"CT", "MR", "PT", "NM"})


@dataclass(frozen=True)
class Advice:
    """One advisory finding about image quality."""

    code: str
    message: str
    image_ids: tuple[str, ...]


def quality_advice(image_ids: Sequence[str], images: Mapping[str, ImageState]) -> list[Advice]:
    """Advisory checks over the submitted images that were de-identified, in a stable order of codes:
    `image_too_small`, `image_blank`, `mixed_modalities`, `single_slice`."""
    ready = [images[i] for i in image_ids if i in images and images[i].status == "ready"]
    out: list[Advice] = []
    small = tuple(i.image_id for i in ready if i.rows is not None and i.columns is not None
                  and min(i.rows, i.columns) < MIN_TEACHING_PIXELS)
    if small:
        out.append(Advice("image_too_small", f"{len(small)} image(s) are smaller than {MIN_TEACHING_PIXELS} pixels "
                          "on a side; upload the original resolution.", small))
    blank = tuple(i.image_id for i in ready if "near_uniform" in i.flags)
    if blank:
        out.append(Advice("image_blank", f"{len(blank)} image(s) are blank or nearly uniform as first displayed; "
                          "check the export or the window.", blank))
    by_study: dict[str, list[ImageState]] = {}
    for i in ready:
        by_study.setdefault(i.study_id or "", []).append(i)
    mixed = tuple(i.image_id for group in by_study.values()
                  if len({m.modality for m in group if m.modality}) > 1 for i in group)
    if mixed:
        out.append(Advice("mixed_modalities", "A study holds images of more than one modality; put each modality "
                          "in its own study.", mixed))
    by_series: dict[str, list[ImageState]] = {}
    for i in ready:
        if i.modality in CROSS_SECTIONAL and i.series_uid:
            by_series.setdefault(i.series_uid, []).append(i)
    single = tuple(g[0].image_id for g in by_series.values() if len(g) == 1 and (g[0].frames or 1) == 1)
    if single:
        out.append(Advice("single_slice", f"{len(single)} cross-sectional series hold a single slice; upload the "
                          "stack so that readers can scroll through it (a key image alone is fine).", single))
    return out


def merge_report(old: ImageState | None, new: ImageState) -> ImageState:
    """An image report combined with the one already stored: a quarantine is final (fail closed) even if a
    later report says ready, facts the new report omits are kept, and identifier digests accumulate."""
    if old is None:
        return new
    quarantined = old.status == "quarantined"
    keep: dict[str, Any] = {k: getattr(old, k) for k in IMAGE_FACTS if getattr(new, k) is None}
    return replace(new, **keep, status="quarantined" if quarantined else new.status,
                   reasons=old.reasons if quarantined and new.status == "ready" else new.reasons,
                   identifier_digests=tuple(sorted({*old.identifier_digests, *new.identifier_digests})))


def is_stale(state: str, revision: int, withdrawn_revision: int, incoming: int) -> bool:
    """A submission at revision `incoming` changes nothing once its case is deleted, a newer submission is
    known, or the owner withdrew it (changed the case back) at a later revision."""
    # The schema library's revision rule, with what a submission must beat: the next revision after the one
    # queued (the same revision again is the same submission, redelivered) and any later withdrawal.
    return not lifecycle.newer_wins(max(revision + 1, withdrawn_revision), incoming, deleted=state == "deleted")


def closing(state: str, revision: int, withdrawn_revision: int, *, to: str, at: int) -> dict[str, Any] | None:
    """What taking a known case out of the queue changes on its item (`to` is `deleted`, or `withdrawn` at
    revision `at`); None when nothing changes. A withdrawal newer than anything known is remembered, so
    that a submission it overtook stays out."""
    released = {"claimed_by": None, "claim_expires_at": None}
    if to == "deleted":
        return {"state": "deleted", **released}
    if state in OPEN_STATES and at > revision:
        return {"state": to, "withdrawn_revision": at, **released}
    if at > withdrawn_revision and state != "deleted":
        return {"withdrawn_revision": at}
    return None
