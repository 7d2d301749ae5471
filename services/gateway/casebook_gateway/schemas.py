"""Request and response bodies of the gateway's HTTP contract (unknown request fields are rejected)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from casebook_gateway.core import has_control_characters

Certainty = Literal["possible", "probable", "almost_certain", "certain", "not_applicable"]
Sex = Literal["female", "male", "other", "unknown"]


def _clean(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("control characters are not allowed")
    return value


Short = Annotated[str, Field(max_length=300), AfterValidator(_clean)]
Long = Annotated[str, Field(max_length=20_000), AfterValidator(_clean)]
Label = Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_clean)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseCreate(Strict):
    title: Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_clean)]
    visibility: Literal["draft", "unlisted"] = "draft"
    presentation: Long = ""
    patient_age: int | None = Field(None, ge=0, le=130)
    patient_sex: Sex | None = None
    systems: list[Label] = Field(default_factory=list, max_length=20)
    tags: list[Label] = Field(default_factory=list, max_length=50)
    diagnostic_certainty: Certainty | None = None
    diagnosis: Long = ""
    discussion: Long = ""


class CasePatch(Strict):
    title: Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_clean)] | None = None
    presentation: Long | None = None
    patient_age: int | None = Field(None, ge=0, le=130)
    patient_sex: Sex | None = None
    systems: list[Label] | None = Field(None, max_length=20)
    tags: list[Label] | None = Field(None, max_length=50)
    diagnostic_certainty: Certainty | None = None
    diagnosis: Long | None = None
    discussion: Long | None = None


class VisibilityChange(Strict):
    visibility: Literal["draft", "unlisted"]


class StudyCreate(Strict):
    modality: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9]+$")]
    findings: Long = ""
    position: int | None = Field(None, ge=1, le=1000)


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


class CaseOut(BaseModel):
    id: str
    title: str
    presentation: str
    patient_age: int | None
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


class UploadAccepted(BaseModel):
    images: list[dict[str, str]]


class HistoryEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    reasons: list[ReasonOut]
    revision: int | None


class PlaylistCreate(Strict):
    title: Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_clean)]
    description: Long = ""
    visibility: Literal["public", "private"] = "private"


class PlaylistItemAdd(Strict):
    case_id: Annotated[str, Field(min_length=1, max_length=40)]


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


class Me(BaseModel):
    id: str
    name: str
    roles: list[str]
