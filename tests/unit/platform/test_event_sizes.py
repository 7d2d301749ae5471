"""Every event stays under `MAX_EVENT_BYTES` (1 MiB, an eighth of the topics' max.message.bytes) for the
worst inputs the platform accepts.

Each produced (topic, version) has a builder below that fills every field to what the producer allows: the
longest text the gateway's schemas take (in the character that encodes longest in JSON, `"`, escaped to two
bytes), the most studies, images per case (`max_images_per_case`) and cases per playlist, the most reasons an
editor may give, and the case-text budget a submission is held to (`max_case_text_bytes`). The limits are
read from the code that enforces them wherever it states them as data (settings, request schemas).
A new event, or a new version, fails here until it has a builder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from casebook_events import TOPICS, ExportCase, ExportImage, ExportManifest, ExportSeries, ExportStudy, TopicSpec
from casebook_events import events as ev
from casebook_events.claims import MAX_MANIFEST_BYTES
from casebook_events.limits import MAX_EVENT_BYTES, MAX_IDENTIFIER_DIGESTS, encoded_size
from casebook_gateway import core as gateway_core
from casebook_gateway.schemas import CaseCreate, StudyCreate
from casebook_gateway.settings import Settings as GatewaySettings
from casebook_moderation.routes import ReasonIn, RejectIn
from casebook_platform.settings import CommonSettings

_CASE_SCHEMA = CaseCreate.model_json_schema()["properties"]
_DEFS = CaseCreate.model_json_schema().get("$defs", {})


def _max_len(prop: str) -> int:
    node = _CASE_SCHEMA[prop]
    return int(node.get("maxLength") or next(a["maxLength"] for a in node.get("anyOf", []) if "maxLength" in a))


def _max_items(prop: str) -> tuple[int, int]:
    node = _CASE_SCHEMA[prop]
    return int(node["maxItems"]), int(node["items"]["maxLength"])


TITLE = _max_len("title")
LONG = _max_len("discussion")
SYSTEMS, LABEL = _max_items("systems")
TAGS, _ = _max_items("tags")
FINDINGS = int(StudyCreate.model_json_schema()["properties"]["findings"]["maxLength"])
STUDIES = 50  # routes/images.py: 409 study_limit_reached
PLAYLIST = 500  # routes/playlists.py: 409 playlist_full
IMAGES = GatewaySettings.model_fields["max_images_per_case"].default
TEXT_BUDGET = GatewaySettings.model_fields["max_case_text_bytes"].default
REASONS = int(RejectIn.model_json_schema()["properties"]["reasons"]["maxItems"])
REASON_CODE = int(ReasonIn.model_fields["code"].metadata[1].max_length)  # type: ignore[attr-defined]
REASON_MESSAGE = int(ReasonIn.model_fields["message"].metadata[1].max_length)  # type: ignore[attr-defined]
# Identifiers the platform mints (`prefix_` + 16 hex) are 18 characters; a case id in a request is at most 40.
ID = "c" * 40
# User ids come from the token's `sub`; the services' columns hold 200 characters.
USER = "u" * 200
# Codes the services write themselves (reason codes, actions, flags, field names) from fixed sets.
CODE = "k" * 40
CODES = 40
# The anonymiser lists one digest per identifying word it saw and quarantines an input with more than this
# (`too_many_identifiers`; tests/unit/anonymiser/test_identifier_limit.py).
IDENTIFIER_DIGESTS = MAX_IDENTIFIER_DIGESTS
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def text(n: int) -> str:
    """n characters that each encode to two bytes of JSON (the most a character allowed in case text takes)."""
    return '"' * n


def _snapshot() -> ev.CaseSnapshot:
    """The most case text a submission may carry: the fields that are also diffed filled first (they appear
    three times in a submission), then findings, up to the case-text budget."""
    sex, certainty = "unknown", "almost_certain"
    left = TEXT_BUDGET - len(sex) - len(certainty)  # the rule counts every string of the snapshot

    def take(n: int) -> str:
        nonlocal left
        n = max(0, min(n, left))
        left -= n
        return text(n)

    snap: dict[str, Any] = {"title": take(TITLE), "presentation": take(LONG), "diagnosis": take(LONG),
                            "discussion": take(LONG), "systems": [take(LABEL) for _ in range(SYSTEMS)],
                            "tags": [take(LABEL) for _ in range(TAGS)]}
    findings = [take(FINDINGS) for _ in range(STUDIES)]
    built = ev.CaseSnapshot(patient_age=130, patient_sex=sex, diagnostic_certainty=certainty,
                            findings=findings, **snap)
    assert gateway_core.text_bytes(built) <= TEXT_BUDGET  # what the gateway lets through, no more
    return built


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:0>39}" for i in range(n)]


def _submitted() -> ev.CaseSubmitted:
    snap = _snapshot()
    text_fields = [f for f in gateway_core.TEXT_FIELDS if f != "patient_age"]
    fields = [ev.FieldChange(field=f, before=getattr(snap, f), after=getattr(snap, f)) for f in text_fields]
    return ev.CaseSubmitted(
        case_id=ID, owner_id=USER, owner_name=USER, revision=10**9, case=snap, image_ids=_ids("i", IMAGES),
        diff=ev.RevisionDiff(base_revision=10**9, fields=fields, studies_added=_ids("s", STUDIES),
                             studies_removed=_ids("r", STUDIES), studies_changed=_ids("s", STUDIES),
                             images_added=_ids("i", IMAGES), images_removed=_ids("j", IMAGES)))


def _reasons() -> list[ev.Reason]:
    return [ev.Reason(code=text(REASON_CODE), message=text(REASON_MESSAGE)) for _ in range(REASONS)]


WORST: dict[tuple[str, int], Callable[[], BaseModel]] = {
    ("case.uploaded", 1): lambda: ev.CaseUploaded(
        case_id=ID, image_id=ID, study_id=ID, owner_id=USER, object_key=f"{ID}/{ID}", content_type=CODE,
        size=2**63 - 1, sha256="0" * 64),
    ("case.anonymised", 1): lambda: ev.CaseAnonymised(
        case_id=ID, image_id=ID, study_id=ID, object_key=f"{ID}/{ID}", media_type=CODE, size=2**63 - 1,
        sha256="0" * 64, modality="c" * 16, series_uid="9" * 64, series_number=2**31, series_description=text(64),
        instance_number=2**31, rows=2**16, columns=2**16, frames=10_000, actions=[CODE] * CODES, flags=[CODE] * CODES,
        identifier_digests=["a" * 64] * IDENTIFIER_DIGESTS),
    ("case.quarantined", 1): lambda: ev.CaseQuarantined(case_id=ID, image_id=ID, study_id=ID, reasons=[CODE] * CODES),
    ("case.submitted", 1): _submitted,
    ("case.updated", 1): lambda: ev.CaseUpdated(
        case_id=ID, owner_id=USER, revision=10**9, status=CODE, visibility=CODE, listed_public=True,
        changed=[CODE] * CODES),
    ("case.deleted", 1): lambda: ev.CaseDeleted(case_id=ID, owner_id=USER, deleted_by=USER),
    ("case.approved", 1): lambda: ev.CaseApproved(case_id=ID, owner_id=USER, editor_id=USER, revision=10**9,
                                                  title=text(TITLE), approved_at=NOW),
    ("case.rejected", 1): lambda: ev.CaseRejected(case_id=ID, owner_id=USER, editor_id=USER, revision=10**9,
                                                  automatic=False, reasons=_reasons()),
    ("case.featured", 1): lambda: ev.CaseFeatured(case_id=ID, editor_id=USER, title=text(TITLE), featured_at=NOW),
    ("case.of_the_month", 1): lambda: ev.CaseOfTheMonthPicked(case_id=ID, month="2026-12", picked_by=USER),
    ("achievement.awarded", 1): lambda: ev.AchievementAwarded(user_id=USER, achievement=CODE, level=30, tier=CODE,
                                                              count=2**31),
    ("export.requested", 2): lambda: ev.ExportRequestedV2(
        export_id=ID, kind="presentation", requested_by=USER, title=text(TITLE), case_id=None, revision=None,
        playlist_id=ID, cases=[ev.ExportCaseRef(case_id=i, revision=10**9) for i in _ids("c", PLAYLIST)],
        fingerprint="f" * 64, manifest_key=f"manifests/{ID}.json", manifest_sha256="0" * 64,
        manifest_size=MAX_MANIFEST_BYTES),
    ("export.ready", 1): lambda: ev.ExportReady(export_id=ID, object_key="k" * 300, size=2**63 - 1,
                                                sha256="0" * 64, expires_at=NOW),
    ("export.failed", 1): lambda: ev.ExportFailed(export_id=ID, reason=CODE, message="m" * 200),
}
# Registered for their consumers only (no producer writes them any more), so not bounded here.
RETIRED = {("export.requested", 1): "superseded by the claim check (version 2); the content went to the manifest"}


def test_every_produced_event_has_a_worst_case() -> None:
    produced = {(t.topic, t.version) for t in TOPICS if t.produced}
    assert produced == set(WORST), f"missing: {sorted(produced - set(WORST))}, unknown: {sorted(set(WORST) - produced)}"
    assert {(t.topic, t.version) for t in TOPICS if not t.produced} == set(RETIRED)


def test_the_bound_is_well_below_the_topics_limit() -> None:
    assert CommonSettings.model_fields["kafka_max_request_size"].default >= MAX_EVENT_BYTES * 8


@pytest.mark.parametrize("spec", [t for t in TOPICS if t.produced], ids=lambda s: f"{s.topic}.v{s.version}")
def test_the_worst_case_event_stays_under_the_bound(spec: TopicSpec) -> None:
    event = WORST[(spec.topic, spec.version)]()
    assert isinstance(event, spec.model)
    size = encoded_size(event, key=str(getattr(event, spec.key)), producer=spec.producers[0])
    assert size <= MAX_EVENT_BYTES, f"{spec.topic} v{spec.version} can reach {size} bytes > {MAX_EVENT_BYTES}"
    print(f"{spec.topic} v{spec.version}: worst case {size} bytes ({100 * size / MAX_EVENT_BYTES:.1f}% of bound)")


def test_a_submission_over_the_text_budget_is_refused_by_the_rule_the_gateway_applies() -> None:
    full = _snapshot()
    assert gateway_core.text_bytes(full) == TEXT_BUDGET
    assert gateway_core.text_bytes(full.model_copy(update={"title": full.title + "é"})) > TEXT_BUDGET


def test_the_largest_manifest_stays_under_its_read_limit() -> None:
    """A playlist's manifest: every case at the text budget and the image limit (measured on one case)."""
    image = ExportImage(image_id=ID, object_key=f"{ID}/{ID}", media_type=CODE, size=2**63 - 1)
    studies = [ExportStudy(position=1000, modality="c" * 16, findings=f, series=[
        ExportSeries(position=1000, description=text(64), images=[image] * (IMAGES // STUDIES))])
        for f in _snapshot().findings]
    one = ExportCase(case_id=ID, revision=10**9, case=_snapshot(), author_name=USER, attribution=text(300),
                     licence=text(100), studies=studies)
    per_case = len(one.model_dump_json().encode())
    empty = len(ExportManifest(export_id=ID, kind="presentation", title=text(TITLE), playlist_id=ID,
                               cases=[]).model_dump_json().encode())
    assert empty + PLAYLIST * (per_case + 1) <= MAX_MANIFEST_BYTES
