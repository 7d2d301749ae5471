"""Pure rules of the export service: mapping requests onto the archive model, names, expiry."""

from __future__ import annotations

from datetime import datetime, timedelta

from casebook_events import ExportCase as EventCase
from casebook_events import ExportRequested
from casebook_export import layout
from casebook_export.model import ExportCase, ExportImage, ExportSeries, ExportStudy


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


def object_key(req: ExportRequested) -> str:
    """Where the archive goes: the export id, then a name a person recognises."""
    suffix = ".zip" if req.kind == "originals" else ".html"
    return f"{req.export_id}/{layout.export_filename(req.title, suffix)}"


def expires(now: datetime, ttl_seconds: int) -> datetime:
    return now + timedelta(seconds=ttl_seconds)


def progress_fraction(done: int, total: int) -> float:
    """0..1, never quite 1 before the archive is stored."""
    if total <= 0:
        return 0.0
    return min(0.99, done / total)
