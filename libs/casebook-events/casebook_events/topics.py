"""The topic registry: topic → event model → producers → consumers, with one example payload each."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from casebook_events import events as ev

DLQ_SUFFIX = ".dlq"


class Topic(StrEnum):
    """Every topic name, in one place."""

    CASE_UPLOADED = "case.uploaded"
    CASE_ANONYMISED = "case.anonymised"
    CASE_QUARANTINED = "case.quarantined"
    CASE_SUBMITTED = "case.submitted"
    CASE_UPDATED = "case.updated"
    CASE_DELETED = "case.deleted"
    CASE_APPROVED = "case.approved"
    CASE_REJECTED = "case.rejected"
    CASE_FEATURED = "case.featured"
    CASE_OF_THE_MONTH = "case.of_the_month"
    ACHIEVEMENT_AWARDED = "achievement.awarded"
    EXPORT_REQUESTED = "export.requested"
    EXPORT_READY = "export.ready"
    EXPORT_FAILED = "export.failed"


def dlq(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return f"{topic}{DLQ_SUFFIX}"


@dataclass(frozen=True)
class TopicSpec:
    """One registry entry."""

    topic: str
    model: type[BaseModel]
    version: int
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    example: dict[str, Any] = field(default_factory=dict)
    # False for a version no producer writes any more, still registered so its consumers accept old events
    # (a rolling upgrade, a replay): the AsyncAPI documents it for consumers only.
    produced: bool = True


_SNAPSHOT = {
    "title": "Osteoid osteoma", "presentation": "Night pain relieved by aspirin.", "patient_age": 15,
    "patient_sex": "male", "systems": ["musculoskeletal"], "tags": ["bone"], "diagnosis": "Osteoid osteoma",
    "diagnostic_certainty": "certain", "discussion": "Classic nidus with surrounding sclerosis.",
    "findings": ["Lucent nidus in the femoral cortex."],
}
_CASE = "c_01HZX5"
_T = "2026-11-02T10:15:00Z"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(Topic.CASE_UPLOADED, ev.CaseUploaded, 1, "case_id", ("gateway",), ("anonymiser",), {
        "case_id": _CASE, "image_id": "i_1", "study_id": "s_1", "owner_id": "alice",
        "object_key": f"{_CASE}/i_1", "content_type": "application/dicom", "size": 39014,
        "sha256": "0" * 64}),
    TopicSpec(Topic.CASE_ANONYMISED, ev.CaseAnonymised, 1, "case_id", ("anonymiser",), ("gateway", "moderation"), {
        "case_id": _CASE, "image_id": "i_1", "study_id": "s_1", "object_key": f"{_CASE}/i_1",
        "media_type": "application/dicom", "size": 38000, "sha256": "1" * 64, "modality": "CT",
        "series_uid": "2.25.1234", "series_number": 2, "series_description": "AXIAL", "instance_number": 1,
        "rows": 128, "columns": 128, "frames": 1, "actions": ["basic_profile", "uids_hashed"], "flags": [],
        "identifier_digests": ["ab" * 32]}),
    TopicSpec(Topic.CASE_QUARANTINED, ev.CaseQuarantined, 1, "case_id", ("anonymiser",), ("gateway", "moderation"), {
        "case_id": _CASE, "image_id": "i_2", "study_id": "s_1", "reasons": ["burned_in_text"]}),
    TopicSpec(Topic.CASE_SUBMITTED, ev.CaseSubmitted, 1, "case_id", ("gateway",), ("moderation",), {
        "case_id": _CASE, "owner_id": "alice", "owner_name": "Alice Smith", "revision": 3, "case": _SNAPSHOT,
        "image_ids": ["i_1"]}),
    TopicSpec(Topic.CASE_UPDATED, ev.CaseUpdated, 1, "case_id", ("gateway",),
              ("moderation", "featuring", "achievements"), {
        "case_id": _CASE, "owner_id": "alice", "revision": 4, "status": "approved", "visibility": "public",
        "listed_public": True, "changed": ["discussion"]}),
    TopicSpec(Topic.CASE_DELETED, ev.CaseDeleted, 1, "case_id", ("gateway",),
              ("moderation", "featuring", "achievements", "export"), {
        "case_id": _CASE, "owner_id": "alice", "deleted_by": "alice"}),
    TopicSpec(Topic.CASE_APPROVED, ev.CaseApproved, 1, "case_id", ("moderation",),
              ("gateway", "featuring", "achievements"), {
        "case_id": _CASE, "owner_id": "alice", "editor_id": "ed", "revision": 3, "title": "Osteoid osteoma",
        "approved_at": _T}),
    TopicSpec(Topic.CASE_REJECTED, ev.CaseRejected, 1, "case_id", ("moderation",), ("gateway",), {
        "case_id": _CASE, "owner_id": "alice", "editor_id": None, "revision": 3, "automatic": True,
        "reasons": [{"code": "certainty_too_low",
                     "message": "Diagnostic certainty must be certain or almost certain."}]}),
    TopicSpec(Topic.CASE_FEATURED, ev.CaseFeatured, 1, "case_id", ("featuring",), ("gateway",), {
        "case_id": _CASE, "editor_id": "ed", "title": "Osteoid osteoma", "featured_at": _T}),
    TopicSpec(Topic.CASE_OF_THE_MONTH, ev.CaseOfTheMonthPicked, 1, "case_id", ("featuring",), ("gateway",), {
        "case_id": _CASE, "month": "2026-12", "picked_by": "ed"}),
    TopicSpec(Topic.ACHIEVEMENT_AWARDED, ev.AchievementAwarded, 1, "user_id", ("achievements",), (), {
        "user_id": "alice", "achievement": "collector", "level": 1, "tier": "bronze", "count": 1}),
    TopicSpec(Topic.EXPORT_REQUESTED, ev.ExportRequested, 1, "export_id", ("gateway",), ("export",), {
        "export_id": "x_1", "kind": "originals", "requested_by": "alice", "title": "Osteoid osteoma",
        "playlist_id": None, "fingerprint": "f" * 64, "cases": [{
            "case_id": _CASE, "revision": 3, "case": _SNAPSHOT, "author_name": "Alice Smith",
            "attribution": f"Case courtesy of Alice Smith, Casebook, case {_CASE}", "licence": "CC BY-NC-SA 4.0",
            "studies": [{"position": 1, "modality": "CT", "findings": "Lucent nidus.", "series": [{
                "position": 1, "description": "AXIAL", "images": [{
                    "image_id": "i_1", "object_key": f"{_CASE}/i_1", "media_type": "application/dicom",
                    "size": 38000}]}]}]}]}, produced=False),
    TopicSpec(Topic.EXPORT_REQUESTED, ev.ExportRequestedV2, 2, "export_id", ("gateway",), ("export",), {
        "export_id": "x_1", "kind": "originals", "requested_by": "alice", "title": "Osteoid osteoma",
        "case_id": _CASE, "revision": 3, "playlist_id": None, "cases": [{"case_id": _CASE, "revision": 3}],
        "fingerprint": "f" * 64, "manifest_key": "manifests/x_1.json", "manifest_sha256": "3" * 64,
        "manifest_size": 1480}),
    TopicSpec(Topic.EXPORT_READY, ev.ExportReady, 1, "export_id", ("export",), ("gateway",), {
        "export_id": "x_1", "object_key": "x_1/case.zip", "size": 40000, "sha256": "2" * 64,
        "expires_at": "2026-11-09T10:15:00Z"}),
    TopicSpec(Topic.EXPORT_FAILED, ev.ExportFailed, 1, "export_id", ("export",), ("gateway",), {
        "export_id": "x_1", "reason": "source_missing", "message": "An image of the case is no longer stored."}),
)

REGISTRY: dict[tuple[str, int], TopicSpec] = {(t.topic, t.version): t for t in TOPICS}
_BY_MODEL: dict[type[BaseModel], TopicSpec] = {t.model: t for t in TOPICS}


def model_for(topic: str, version: int = 1) -> type[BaseModel]:
    """The model of `topic` at `version`.

    Raises:
        KeyError: unknown topic or version.
    """
    return REGISTRY[(topic, version)].model


def spec_for_model(model: type[BaseModel]) -> TopicSpec:
    """The registry entry of an event model.

    Raises:
        KeyError: the model is not a registered event.
    """
    return _BY_MODEL[model]


def consumed_by(service: str) -> list[str]:
    """Topics a service consumes, per the registry."""
    return list(dict.fromkeys(t.topic for t in TOPICS if service in t.consumers))


def latest(topic: str) -> TopicSpec:
    """The newest registered version of `topic` (the one its producers write).

    Raises:
        KeyError: unknown topic.
    """
    versions = [t for t in TOPICS if t.topic == topic]
    if not versions:
        raise KeyError(topic)
    return max(versions, key=lambda t: t.version)
