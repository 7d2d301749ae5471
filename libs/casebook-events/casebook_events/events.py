"""One frozen model per event; names in the past tense; within a version only optional fields are added."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Certainty = Literal["certain", "almost_certain", "probable", "possible", "not_applicable"]
Sex = Literal["female", "male", "other", "unknown"]


class Event(BaseModel):
    """Base of every payload: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(Event):
    """A reason a contributor can act on."""

    code: str = Field(description="Stable machine-readable reason code, e.g. `certainty_too_low`.")
    message: str = Field(description="Human text explaining what to fix.")


class CaseSnapshot(Event):
    """The text of a case as it stood when the event was written (never any image bytes)."""

    title: str = Field(description="The case title (usually the diagnosis).")
    presentation: str = Field("", description="Clinical history.")
    patient_age: int | None = Field(None, description="Age in years.")
    patient_sex: Sex | None = Field(None, description="Patient sex.")
    systems: list[str] = Field(default_factory=list, description="Body systems.")
    tags: list[str] = Field(default_factory=list, description="Free tags.")
    diagnosis: str = Field("", description="Diagnosis.")
    diagnostic_certainty: Certainty | None = Field(None, description="Diagnostic certainty.")
    discussion: str = Field("", description="Case discussion.")
    findings: list[str] = Field(default_factory=list, description="Each study's findings text, in study order.")


class CaseUploaded(Event):
    """An image was received and stored raw in the incoming bucket; it awaits de-identification."""

    case_id: str = Field(description="The case the image belongs to (the event key).")
    image_id: str = Field(description="The image's id.")
    study_id: str = Field(description="The study the image belongs to.")
    owner_id: str = Field(description="The contributor who uploaded it.")
    object_key: str = Field(description="Key of the raw object in the incoming bucket.")
    content_type: str = Field(description="What the gateway recognised: application/dicom, image/png, image/jpeg.")
    size: int = Field(description="Size in bytes of the raw object.")
    sha256: str = Field(description="SHA-256 of the raw object, hex.")


class CaseAnonymised(Event):
    """An image was de-identified and stored in the images bucket; the raw upload is gone."""

    case_id: str = Field(description="The case (the event key).")
    image_id: str = Field(description="The image's id.")
    study_id: str = Field(description="The study the image belongs to.")
    object_key: str = Field(description="Key of the de-identified object in the images bucket.")
    media_type: str = Field(description="application/dicom, image/png or image/jpeg.")
    size: int = Field(description="Size in bytes of the de-identified object.")
    sha256: str = Field(description="SHA-256 of the de-identified object, hex.")
    modality: str | None = Field(None, description="DICOM Modality, when known.")
    series_uid: str | None = Field(None, description="The pseudonymised SeriesInstanceUID.")
    series_number: int | None = Field(None, description="SeriesNumber, when known.")
    series_description: str | None = Field(None, description="The cleaned series description.")
    instance_number: int | None = Field(None, description="InstanceNumber, used to order a stack.")
    rows: int | None = Field(None, description="Image height in pixels.")
    columns: int | None = Field(None, description="Image width in pixels.")
    frames: int = Field(1, description="Number of frames.")
    actions: list[str] = Field(default_factory=list, description="De-identification actions applied.")
    flags: list[str] = Field(default_factory=list, description="Flags for moderation, e.g. `burned_in_text_redacted`.")
    identifier_digests: list[str] = Field(
        default_factory=list,
        description="Salted SHA-256 digests of identifying tokens seen in the input, so that case text can be "
        "checked for them without the identifiers themselves ever leaving the anonymiser.",
    )


class CaseQuarantined(Event):
    """An image could not be proven free of identifiers and was not published (fail closed)."""

    case_id: str = Field(description="The case (the event key).")
    image_id: str = Field(description="The image's id.")
    study_id: str = Field(description="The study the image belongs to.")
    reasons: list[str] = Field(description="Stable reason codes, e.g. `burned_in_text`, `invalid_dicom`.")


class FieldChange(Event):
    """One text field of a case that differs from the last approved revision."""

    field: str = Field(description="The field's name, e.g. `discussion`.")
    before: str | int | list[str] | None = Field(None, description="Its value in the last approved revision.")
    after: str | int | list[str] | None = Field(None, description="Its value in this revision.")


class RevisionDiff(Event):
    """What a submitted revision changes against the last approved one (all of it when none was approved)."""

    base_revision: int | None = Field(None, description="The last approved revision; None when there is none.")
    fields: list[FieldChange] = Field(default_factory=list, description="Changed text fields.")
    studies_added: list[str] = Field(default_factory=list, description="Ids of studies added.")
    studies_removed: list[str] = Field(default_factory=list, description="Ids of studies removed.")
    studies_changed: list[str] = Field(default_factory=list, description="Ids of studies whose findings, "
                                       "modality or position changed.")
    images_added: list[str] = Field(default_factory=list, description="Ids of images added.")
    images_removed: list[str] = Field(default_factory=list, description="Ids of images removed.")


class CaseSubmitted(Event):
    """The owner published a case: it enters moderation."""

    case_id: str = Field(description="The case (the event key).")
    owner_id: str = Field(description="The owner.")
    owner_name: str = Field("", description="The owner's display name (for attribution).")
    revision: int = Field(description="The case's revision number at submission.")
    case: CaseSnapshot = Field(description="The submitted text.")
    image_ids: list[str] = Field(default_factory=list, description="Every image of the case at submission.")
    diff: RevisionDiff | None = Field(None, description="What this revision changes against the last approved "
                                      "one (optional; absent from submissions written before it existed).")


class CaseUpdated(Event):
    """The owner changed a case (text or visibility)."""

    case_id: str = Field(description="The case (the event key).")
    owner_id: str = Field(description="The owner.")
    revision: int = Field(description="The case's new revision number.")
    status: str = Field(description="The case's status after the change.")
    visibility: str = Field(description="The case's visibility after the change.")
    listed_public: bool = Field(description="Whether the case is (still) listed as an approved public case.")
    changed: list[str] = Field(default_factory=list, description="Names of the changed fields.")


class CaseDeleted(Event):
    """A case was deleted by its owner or an admin; its objects are removed."""

    case_id: str = Field(description="The case (the event key).")
    owner_id: str = Field(description="The owner.")
    deleted_by: str = Field(description="Who deleted it.")


class CaseApproved(Event):
    """An editor approved a case: it is public."""

    case_id: str = Field(description="The case (the event key).")
    owner_id: str = Field(description="The owner.")
    editor_id: str = Field(description="The approving editor.")
    revision: int = Field(description="The approved revision.")
    title: str = Field("", description="The approved title, for listings.")
    approved_at: datetime = Field(description="When it was approved (UTC).")


class CaseRejected(Event):
    """A case was returned to its owner with reasons (by an editor, or by the automatic checks)."""

    case_id: str = Field(description="The case (the event key).")
    owner_id: str = Field(description="The owner.")
    editor_id: str | None = Field(None, description="The rejecting editor; None when the automatic checks rejected it.")
    revision: int = Field(description="The rejected revision.")
    automatic: bool = Field(False, description="True when the automatic checks rejected it.")
    reasons: list[Reason] = Field(description="What to fix.")


class CaseFeatured(Event):
    """An editor featured an approved public case."""

    case_id: str = Field(description="The case (the event key).")
    editor_id: str = Field(description="The editor.")
    title: str = Field("", description="The case title.")
    featured_at: datetime = Field(description="When (UTC).")


class CaseOfTheMonthPicked(Event):
    """The committee picked the Case of the Month for `month`."""

    case_id: str = Field(description="The picked case (the event key).")
    month: str = Field(description="The month, `YYYY-MM` (UTC).")
    picked_by: str = Field(description="The editor who recorded the pick.")


class AchievementAwarded(Event):
    """A user reached a new level of an achievement."""

    user_id: str = Field(description="The user (the event key).")
    achievement: str = Field(description="The achievement, e.g. `collector`.")
    level: int = Field(description="The new level (1–30).")
    tier: str = Field(description="bronze, silver or gold.")
    count: int = Field(description="The count that reached the level.")


class ExportImage(Event):
    """One de-identified image to export."""

    image_id: str = Field(description="The image's id.")
    object_key: str = Field(description="Its key in the images bucket.")
    media_type: str = Field(description="Its media type.")
    size: int = Field(0, description="Its size in bytes.")


class ExportSeries(Event):
    """One series of a study, images in stack order."""

    position: int = Field(description="1-based position within the study.")
    description: str = Field("", description="Series description (already de-identified).")
    images: list[ExportImage] = Field(default_factory=list, description="Images in order.")


class ExportStudy(Event):
    """One study of a case."""

    position: int = Field(description="1-based position within the case.")
    modality: str = Field("", description="Modality.")
    findings: str = Field("", description="Findings text.")
    series: list[ExportSeries] = Field(default_factory=list, description="Series in order.")


class ExportCase(Event):
    """Everything an export needs to know about one case."""

    case_id: str = Field(description="The case.")
    revision: int = Field(description="The case revision (part of the reuse fingerprint).")
    case: CaseSnapshot = Field(description="The case text.")
    author_name: str = Field(description="The author's name.")
    attribution: str = Field(description="The attribution line.")
    licence: str = Field(description="The licence.")
    studies: list[ExportStudy] = Field(default_factory=list, description="Studies in order.")


class ExportRequested(Event):
    """A user asked for an export (the gateway checked who may). Version 1 carries the whole content.

    Superseded by version 2 (`ExportRequestedV2`, a claim check); the export service still accepts version 1
    from a gateway of the previous release during a rolling upgrade.
    """

    export_id: str = Field(description="The export job's id (the event key).")
    kind: Literal["originals", "presentation"] = Field(description="What to build.")
    requested_by: str = Field(description="The requesting user.")
    title: str = Field(description="The title of the export (case or playlist title).")
    playlist_id: str | None = Field(None, description="Set for a playlist presentation.")
    fingerprint: str = Field(
        description="Digest of the exported content; an unchanged fingerprint may reuse an archive.")
    cases: list[ExportCase] = Field(description="The cases to export, in order.")


class ExportManifest(Event):
    """What an export contains, stored by the gateway in the exports bucket (`manifests/<export_id>.json`).

    The claim check of `export.requested` v2: the event names the manifest (key, SHA-256, size) instead of
    carrying every case's text and images, so its size does not grow with the export.
    """

    export_id: str = Field(description="The export job's id.")
    kind: Literal["originals", "presentation"] = Field(description="What to build.")
    title: str = Field(description="The title of the export (case or playlist title).")
    playlist_id: str | None = Field(None, description="Set for a playlist presentation.")
    cases: list[ExportCase] = Field(description="The cases to export, in order: text, licence, attribution, images.")


class ExportCaseRef(Event):
    """One case of an export, by reference."""

    case_id: str = Field(description="The case.")
    revision: int = Field(description="The case revision exported.")


class ExportRequestedV2(Event):
    """A user asked for an export (the gateway checked who may); what it contains is in the stored manifest."""

    export_id: str = Field(description="The export job's id (the event key).")
    kind: Literal["originals", "presentation"] = Field(description="What to build.")
    requested_by: str = Field(description="The requesting user.")
    title: str = Field(description="The title of the export (case or playlist title, at most 300 characters).")
    case_id: str | None = Field(None, description="Set for the export of one case.")
    revision: int | None = Field(None, description="That case's revision.")
    playlist_id: str | None = Field(None, description="Set for a playlist presentation.")
    cases: list[ExportCaseRef] = Field(description="Every exported case and revision, in order (a deleted case "
                                       "takes its exports).")
    fingerprint: str = Field(
        description="Digest of the exported content; an unchanged fingerprint may reuse an archive.")
    manifest_key: str = Field(description="Key of the `ExportManifest` (JSON) in the exports bucket.")
    manifest_sha256: str = Field(description="SHA-256 of the manifest object, hex: the export service verifies it.")
    manifest_size: int = Field(description="Size of the manifest object in bytes.")


class ExportReady(Event):
    """An export archive is stored and downloadable until it expires."""

    export_id: str = Field(description="The export (the event key).")
    object_key: str = Field(description="Key in the exports bucket.")
    size: int = Field(description="Archive size in bytes.")
    sha256: str = Field(description="Archive SHA-256, hex.")
    expires_at: datetime = Field(description="When the archive will be deleted (UTC).")


class ExportFailed(Event):
    """An export could not be built."""

    export_id: str = Field(description="The export (the event key).")
    reason: str = Field(description="Stable reason code.")
    message: str = Field("", description="Human text.")
