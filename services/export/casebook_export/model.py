"""What an export contains: a case, its studies, series and images, as plain frozen values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MEDIA_DICOM = "application/dicom"
MEDIA_PNG = "image/png"
MEDIA_JPEG = "image/jpeg"


@dataclass(frozen=True)
class ExportImage:
    """One de-identified image object in the images bucket."""

    image_id: str
    object_key: str
    media_type: str
    size: int


@dataclass(frozen=True)
class ExportSeries:
    """A series of images; `position` orders series within their study."""

    position: int
    description: str
    images: Sequence[ExportImage] = field(default_factory=tuple)


@dataclass(frozen=True)
class ExportStudy:
    """A study of one modality; `position` orders studies within their case."""

    position: int
    modality: str
    findings: str
    series: Sequence[ExportSeries] = field(default_factory=tuple)


@dataclass(frozen=True)
class ExportCase:
    """Everything exported for one case: its text, its credit and its images."""

    case_id: str
    title: str
    presentation: str
    patient_age: int | None
    patient_sex: str
    systems: Sequence[str]
    tags: Sequence[str]
    diagnosis: str
    diagnostic_certainty: str
    discussion: str
    author_name: str
    attribution: str
    licence: str
    studies: Sequence[ExportStudy] = field(default_factory=tuple)

    def images(self) -> list[ExportImage]:
        """All images of the case in display order (study, series, image)."""
        return [
            image
            for study in sorted(self.studies, key=lambda s: s.position)
            for series in sorted(study.series, key=lambda s: s.position)
            for image in series.images
        ]
