"""Events the gateway consumes, built the same way for its service test and its adapter-parity test."""

from __future__ import annotations

from datetime import UTC, datetime

from casebook_events import CaseAnonymised, CaseApproved, CaseRejected, Reason

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
FIX = Reason(code="certainty_too_low", message="Give a certain or probable diagnosis.")


def anonymised(image_id: str = "i_1", *, case_id: str = "c_1") -> CaseAnonymised:
    """The anonymiser's report of a ready CT image, its object at `<case_id>/<image_id>`."""
    return CaseAnonymised(case_id=case_id, image_id=image_id, study_id="s_1", object_key=f"{case_id}/{image_id}",
                          media_type="application/dicom", size=51234, sha256="ab" * 32, modality="CT",
                          series_uid="2.25.1", series_number=3, series_description="Axial bone", instance_number=7,
                          rows=512, columns=512, frames=2)


def approval(revision: int, *, case_id: str = "c_1", at: datetime = AT) -> CaseApproved:
    """An editor's approval of revision `revision` of alice's case."""
    return CaseApproved(case_id=case_id, owner_id="alice", editor_id="erin", revision=revision,
                        title="Osteoid osteoma", approved_at=at)


def rejection(revision: int, *, case_id: str = "c_1", editor_id: str | None = "erin") -> CaseRejected:
    """A rejection of revision `revision` with the reason `FIX`, by an editor or (`editor_id` None) the checks."""
    return CaseRejected(case_id=case_id, owner_id="alice", editor_id=editor_id, revision=revision,
                        automatic=editor_id is None, reasons=[FIX])
