"""Pure rules of the export service: requests of either version as one job, names, expiry, manifests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from casebook_events import ExportCase as EventCase
from casebook_events import ExportManifest, ExportRequested, ExportRequestedV2, claims
from casebook_export import layout
from casebook_export.model import ExportCase, ExportImage, ExportSeries, ExportStudy

Requested = ExportRequested | ExportRequestedV2

QUEUED, RUNNING, READY, FAILED, EXPIRED, DELETED = "queued", "running", "ready", "failed", "expired", "deleted"
# A job in one of these states will never read its manifest again.
FINISHED = frozenset({READY, FAILED, EXPIRED, DELETED})
# A ready archive this close to its expiry is not reused: the new request would get a link about to die.
REUSE_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class JobRequest:
    """What a job needs of its request, whichever version of `export.requested` brought it."""

    export_id: str
    kind: str
    requested_by: str
    title: str
    fingerprint: str
    case_ids: tuple[str, ...]
    claim: claims.Claim | None  # None: a version 1 request, whose content is in the event itself


def request_of(event: Requested) -> JobRequest:
    """The job's view of an `export.requested` event (version 1 or 2)."""
    claim = None
    if isinstance(event, ExportRequestedV2):
        claim = claims.Claim(key=event.manifest_key, sha256=event.manifest_sha256, size=event.manifest_size)
    return JobRequest(export_id=event.export_id, kind=event.kind, requested_by=event.requested_by,
                      title=event.title[:300], fingerprint=event.fingerprint,
                      case_ids=tuple(c.case_id for c in event.cases), claim=claim)


def stored(event: Requested) -> dict[str, Any]:
    """The request as a job row keeps it (JSON; `cases[].case_id` in both versions)."""
    return event.model_dump(mode="json")


def parse_stored(request: dict[str, Any]) -> Requested:
    """A stored request back as its event: version 2 names a manifest, version 1 carries the content."""
    if "manifest_key" in request:
        return ExportRequestedV2.model_validate(request)
    return ExportRequested.model_validate(request)


def inline_manifest(event: ExportRequested) -> ExportManifest:
    """The manifest a version 1 request carries inside itself."""
    return ExportManifest(export_id=event.export_id, kind=event.kind, title=event.title,
                          playlist_id=event.playlist_id, cases=event.cases)


def new_job(req: JobRequest, request: dict[str, Any], *, deleted: bool, reuse: dict[str, Any] | None
            ) -> dict[str, Any]:
    """The job row of a request: queued, never built (a case of it was deleted first), or ready at once (an
    unchanged case exported recently reuses the stored archive)."""
    values: dict[str, Any] = {"id": req.export_id, "requested_by": req.requested_by, "kind": req.kind,
                              "title": req.title, "fingerprint": req.fingerprint, "request": request,
                              "status": QUEUED}
    if deleted:
        values["status"] = DELETED
    elif reuse:
        values.update(status=READY, progress=1.0, object_key=reuse["object_key"], size=reuse["size"],
                      sha256=reuse["sha256"], expires_at=reuse["expires_at"])
    return values


def manifest_disposable(status: str | None, age_s: float, grace_s: float) -> bool:
    """Whether a stored manifest can go: its job is finished, or it has no job long after it was written (the
    gateway's transaction failed after storing it; an event still on its way arrives well within `grace_s`)."""
    if status is None:
        return age_s > grace_s
    return status in FINISHED


def to_model(c: EventCase) -> ExportCase:
    """The archive builder's view of one requested case."""
    s = c.case
    return ExportCase(
        case_id=c.case_id, title=s.title, presentation=s.presentation, patient_age=s.patient_age,
        patient_sex=s.patient_sex or "", systems=tuple(s.systems), tags=tuple(s.tags), diagnosis=s.diagnosis,
        diagnostic_certainty=s.diagnostic_certainty or "", discussion=s.discussion, author_name=c.author_name,
        attribution=c.attribution, licence=c.licence,
        studies=tuple(ExportStudy(position=st.position, modality=st.modality, findings=st.findings, series=tuple(
            ExportSeries(position=se.position, description=se.description, images=tuple(
                ExportImage(image_id=i.image_id, object_key=i.object_key, media_type=i.media_type, size=i.size)
                for i in se.images)) for se in st.series)) for st in c.studies))


def object_key(export_id: str, kind: str, title: str) -> str:
    """Where the archive goes: the export id, then a name a person recognises."""
    suffix = ".zip" if kind == "originals" else ".html"
    return f"{export_id}/{layout.export_filename(title, suffix)}"


def expires(now: datetime, ttl_seconds: int) -> datetime:
    return now + timedelta(seconds=ttl_seconds)


def progress_fraction(done: int, total: int) -> float:
    """0..1, never quite 1 before the archive is stored."""
    if total <= 0:
        return 0.0
    return min(0.99, done / total)


def visible(row: dict[str, Any] | None, user_id: str, *, admin: bool) -> bool:
    """Whether a user sees a job: its requester or an admin, and never a deleted case's export."""
    return row is not None and row["status"] != DELETED and (row["requested_by"] == user_id or admin)
