"""Casebook's events: the envelope, one frozen model per event, and the topic registry."""

from casebook_events.envelope import Envelope, decode, encode, make_envelope
from casebook_events.events import (
    AchievementAwarded,
    CaseAnonymised,
    CaseApproved,
    CaseDeleted,
    CaseFeatured,
    CaseOfTheMonthPicked,
    CaseQuarantined,
    CaseRejected,
    CaseSnapshot,
    CaseSubmitted,
    CaseUpdated,
    CaseUploaded,
    ExportCase,
    ExportCaseRef,
    ExportFailed,
    ExportImage,
    ExportManifest,
    ExportReady,
    ExportRequested,
    ExportRequestedV2,
    ExportSeries,
    ExportStudy,
    Reason,
)
from casebook_events.topics import DLQ_SUFFIX, REGISTRY, TOPICS, Topic, TopicSpec, dlq, model_for

__all__ = [
    "DLQ_SUFFIX", "REGISTRY", "TOPICS", "AchievementAwarded", "CaseAnonymised", "CaseApproved", "CaseDeleted",
    "CaseFeatured", "CaseOfTheMonthPicked", "CaseQuarantined", "CaseRejected", "CaseSnapshot", "CaseSubmitted",
    "CaseUpdated", "CaseUploaded", "Envelope", "ExportCase", "ExportCaseRef", "ExportFailed", "ExportImage",
    "ExportManifest", "ExportReady", "ExportRequested", "ExportRequestedV2", "ExportSeries", "ExportStudy",
    "Reason", "Topic", "TopicSpec", "decode", "dlq", "encode",
    "make_envelope", "model_for",
]
