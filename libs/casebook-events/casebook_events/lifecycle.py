"""The case lifecycle, written once: statuses, transitions, who may do what, and the revision rule.

Pure: no I/O. Every service takes its status names and rules from here, so that "a case awaiting
moderation" or "a newer revision wins, a deletion is final" mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum


class Status(StrEnum):
    """Where a case stands (the `status` of the HTTP contract)."""

    DRAFT = "draft"
    UNLISTED = "unlisted"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class Visibility(StrEnum):
    """Who a case is meant for (the `visibility` of the HTTP contract)."""

    DRAFT = "draft"
    UNLISTED = "unlisted"
    PUBLIC = "public"


class RevisionStatus(StrEnum):
    """Where one revision of a case stands."""

    PENDING = "pending"  # the owner's working copy, changed since the last submission
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # submitted, then replaced by a newer submission before any decision
    WITHDRAWN = "withdrawn"  # submitted, then taken back to draft or unlisted by its owner


# A case awaiting an editor's decision.
UNDER_REVIEW: frozenset[str] = frozenset({Status.SUBMITTED, Status.IN_REVIEW})
# Visibilities that count against a per-owner limit (a rejected case returns as a draft and counts).
LIMITED: frozenset[str] = frozenset({Visibility.DRAFT, Visibility.UNLISTED})
# The statuses a case may be (re)submitted from; an approved case is resubmitted with its pending edits.
SUBMITTABLE: frozenset[str] = frozenset({Status.DRAFT, Status.UNLISTED, Status.REJECTED, Status.APPROVED})


def can_submit(status: str) -> bool:
    """True when a case in `status` may be sent to moderation."""
    return status in SUBMITTABLE


def is_under_review(status: str) -> bool:
    """True while a case waits for an editor."""
    return status in UNDER_REVIEW


def resubmits_on_edit(status: str) -> bool:
    """True when an edit of the text sends the case through moderation again: a case under review, or an
    approved one (its published revision stays public until the edited revision is approved)."""
    return status in UNDER_REVIEW or status == Status.APPROVED


def after_rejection(has_published_revision: bool) -> tuple[str, str]:
    """(status, visibility) after a rejection: a case never approved returns to its owner as a draft (and
    counts against the draft limit); an approved case keeps its published revision public."""
    if has_published_revision:
        return Status.APPROVED, Visibility.PUBLIC
    return Status.REJECTED, Visibility.DRAFT


def may_decide(editor_id: str, owner_id: str) -> bool:
    """Editors never claim, approve or reject their own cases."""
    return editor_id != owner_id


def is_editor(roles: Collection[str]) -> bool:
    """Editors (and admins) moderate."""
    return "editor" in roles or "admin" in roles


def over_limit(count: int, limit: int) -> bool:
    """True when an owner already holds `limit` or more cases of a limited kind (no new one may be added)."""
    return count >= limit


def decision_applies(revision_status: str) -> bool:
    """True when an editor's decision still applies to a revision: one still submitted, or superseded by a
    newer submission it raced with (the editor decided on what they saw). A withdrawn revision, or one
    already decided, stays as it is."""
    return revision_status in (RevisionStatus.SUBMITTED, RevisionStatus.SUPERSEDED)


def newer_wins(known_revision: int, incoming_revision: int, *, deleted: bool) -> bool:
    """The revision rule: an event changes a record only when it is not older than what is known, and
    nothing changes a deleted case (a deletion is final)."""
    return not deleted and incoming_revision >= known_revision
