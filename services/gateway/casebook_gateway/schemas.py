"""Request and response bodies of the gateway's HTTP contract (unknown request fields are rejected)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from casebook_gateway.core import has_control_characters
from casebook_platform.openapi import TEXT_PATTERN

Certainty = Literal["possible", "probable", "almost_certain", "certain", "not_applicable"]
Sex = Literal["female", "male", "other", "unknown"]


def _clean(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("control characters are not allowed")
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, bool):  # JSON's true/false are not numbers, whatever Python thinks
        raise ValueError("expected an integer, not a boolean")
    return value


# The pattern says in the OpenAPI what `_clean` enforces: no control characters but newlines and tabs.
Short = Annotated[str, Field(max_length=300, pattern=TEXT_PATTERN), AfterValidator(_clean)]
Long = Annotated[str, Field(max_length=20_000, pattern=TEXT_PATTERN), AfterValidator(_clean)]
Label = Annotated[str, Field(min_length=1, max_length=60, pattern=TEXT_PATTERN), AfterValidator(_clean)]
Title = Annotated[str, Field(min_length=1, max_length=300, pattern=TEXT_PATTERN), AfterValidator(_clean)]
Age = Annotated[int, Field(ge=0, le=130), BeforeValidator(_integer)]
Position = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_integer)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseCreate(Strict):
    title: Title
    visibility: Literal["draft", "unlisted"] = "draft"
    presentation: Long = ""
    patient_age: Age | None = None
    patient_sex: Sex | None = None
    systems: list[Label] = Field(default_factory=list, max_length=20)
    tags: list[Label] = Field(default_factory=list, max_length=50)
    diagnostic_certainty: Certainty | None = None
    diagnosis: Long = ""
    discussion: Long = ""


def _not_nullable(schema: dict[str, Any]) -> None:
    """Document a field that may be left out (kept as it is) but never set to null."""
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    schema.pop("default", None)


class CasePatch(Strict):
    # Absent means "keep"; only the nullable fields take null (the others always hold a value).
    title: Title | None = Field(None, json_schema_extra=_not_nullable)
    presentation: Long | None = Field(None, json_schema_extra=_not_nullable)
    patient_age: Age | None = None
    patient_sex: Sex | None = None
    systems: list[Label] | None = Field(None, max_length=20, json_schema_extra=_not_nullable)
    tags: list[Label] | None = Field(None, max_length=50, json_schema_extra=_not_nullable)
    diagnostic_certainty: Certainty | None = None
    diagnosis: Long | None = Field(None, json_schema_extra=_not_nullable)
    discussion: Long | None = Field(None, json_schema_extra=_not_nullable)

    @field_validator("title", "presentation", "systems", "tags", "diagnosis", "discussion", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Leaving a field out keeps it; `null` would erase a field that always holds a value.
        if value is None:
            raise ValueError("may not be null (leave the field out to keep it)")
        return value


class VisibilityChange(Strict):
    visibility: Literal["draft", "unlisted"]


class StudyCreate(Strict):
    modality: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")]
    findings: Long = ""
    position: Position | None = None


class ReasonOut(BaseModel):
    code: str
    message: str = ""


class ModerationOut(BaseModel):
    status: str
    reasons: list[ReasonOut]


class OwnerOut(BaseModel):
    id: str
    name: str


class StudyOut(BaseModel):
    id: str
    modality: str
    findings: str
    position: int
    images: int


class Completeness(BaseModel):
    percent: int = Field(description="Share of the items an editor looks for that the case has, 0–100.")
    missing: list[str] = Field(description="What is missing: `presentation`, `patient_age`, `patient_sex`, "
                               "`systems`, `findings:study-<n>` (or `findings` with no study), `discussion`, "
                               "`tags`, `ready_image`.")


class CaseOut(BaseModel):
    id: str
    title: str
    presentation: str
    patient_age: int | str | None = Field(description="Years. Readers see an adult's age rounded to 5 years, "
                                          "and `90+` above 89; the owner and editors see what was entered.")
    patient_sex: str | None
    systems: list[str]
    tags: list[str]
    diagnosis: str
    diagnostic_certainty: str | None
    discussion: str
    status: str
    visibility: str
    revision: int
    owner: OwnerOut
    studies: list[StudyOut]
    moderation: ModerationOut
    licence: str
    licence_url: str
    attribution: str
    share_url: str | None = None
    completeness: Completeness | None = Field(None, description="The owner's view only.")
    created_at: datetime
    updated_at: datetime


class CaseList(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None


class ImageOut(BaseModel):
    id: str
    study_id: str
    series: dict[str, object]
    status: str
    reasons: list[str]
    url: str | None


class RejectedMember(BaseModel):
    name: str = Field(description="The member's path inside the zip.")
    code: str = Field(description="Why it was refused: `invalid_dicom`, `invalid_image`, `unsupported_media`.")
    message: str


class UploadAccepted(BaseModel):
    images: list[dict[str, str]]
    rejected: list[RejectedMember] = Field(default_factory=list,
                                           description="Members of a zip that were refused, each with its code.")


class FieldChange(BaseModel):
    field: str
    before: Any = None
    after: Any = None


class RevisionDiffOut(BaseModel):
    base_revision: int | None = Field(description="The last approved revision compared against (None: none yet).")
    fields: list[FieldChange]
    studies_added: list[str]
    studies_removed: list[str]
    studies_changed: list[str]
    images_added: list[str]
    images_removed: list[str]


class RevisionSummary(BaseModel):
    n: int
    status: str = Field(description="`pending` (changed since the last submission, not submitted yet), "
                        "`submitted`, `approved`, `rejected`, `superseded` or `withdrawn`.")
    submitted_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    reasons: list[ReasonOut]
    diff: RevisionDiffOut


class RevisionStudy(BaseModel):
    id: str
    position: int
    modality: str
    findings: str


class RevisionOut(RevisionSummary):
    title: str
    presentation: str
    patient_age: int | None
    patient_sex: str | None
    systems: list[str]
    tags: list[str]
    diagnosis: str
    diagnostic_certainty: str | None
    discussion: str
    studies: list[RevisionStudy]
    image_ids: list[str]


class HistoryEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    reasons: list[ReasonOut]
    revision: int | None


class PlaylistCreate(Strict):
    title: Title
    description: Long = ""
    visibility: Literal["public", "private"] = "private"


class PlaylistItemAdd(Strict):
    case_id: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


class PlaylistOut(BaseModel):
    id: str
    title: str
    description: str
    visibility: str
    owner: str
    cases: list[dict[str, object]]


class ExportCreate(Strict):
    kind: Literal["originals", "presentation"]


class PlaylistExportCreate(Strict):
    kind: Literal["presentation"] = "presentation"


class ExportOut(BaseModel):
    id: str
    status: str
    progress: float = 0.0
    download_url: str | None = None
    expires_at: str | None = None
    size: int | None = None


class Limit(BaseModel):
    used: int = Field(description="Cases the caller holds of this kind now.")
    max: int = Field(description="Most they may hold (409 `draft_limit_reached` / `unlisted_limit_reached` past it).")


class MyLimits(BaseModel):
    drafts: Limit
    unlisted: Limit


class Me(BaseModel):
    id: str
    name: str
    roles: list[str]
    limits: MyLimits = Field(description="How much of the draft and unlisted limits the caller uses.")


class TextRegion(BaseModel):
    x0: int
    y0: int
    x1: int
    y1: int


class DeidReport(BaseModel):
    """What de-identification did to one image; attribute keywords only, never a removed value."""

    image_id: str
    status: str = Field(description="`ready` or `quarantined`.")
    kept: list[str] = Field(default_factory=list, description="Attributes copied after their values were checked.")
    removed: list[str] = Field(default_factory=list,
                               description="Attributes dropped (`keyword` or `keyword:count`; `private:n`).")
    rewritten: list[str] = Field(default_factory=list,
                                 description="Attributes replaced: UIDs, shifted dates, banded age, descriptions.")
    pixels: list[str] = Field(default_factory=list, description="What was done to the pixel data.")
    text_regions_redacted: list[TextRegion] = Field(default_factory=list)
    views_checked: int = Field(0, description="Views of the image the burned-in text check looked at.")
    quarantine_reasons: list[str] = Field(default_factory=list)
