"""The steps of the case routes, each inside the caller's session: load and check the case, apply the rules
(`core`, `casebook_events.lifecycle`), write (`adapters/`) and emit. The routes open the transaction and
render the answer."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import CaseDeleted, CaseSubmitted, lifecycle
from casebook_events.events import RevisionDiff
from casebook_events.lifecycle import RevisionStatus, Visibility
from casebook_gateway import core, repo
from casebook_gateway.adapters import casestore, revisions
from casebook_gateway.ports import Outbox
from casebook_gateway.settings import Settings
from casebook_platform.auth import Principal
from casebook_platform.errors import ApiError

Case = dict[str, Any]


def _share_token(visibility: str) -> str | None:
    """A new share link's token for an unlisted case; None (no link) for any other."""
    return secrets.token_urlsafe(24) if visibility == Visibility.UNLISTED else None


async def owned_case(session: AsyncSession, case_id: str, user: Principal, *, allow_admin: bool = False) -> Case:
    """The case, locked until the transaction ends, if the caller owns it (or is an admin, when allowed).

    Raises:
        ApiError: 404 `not_found` (the caller may not see it), 403 `not_owner`.
    """
    case = await repo.load_case(session, case_id, user, lock=True)
    repo.require_owner(case, user, allow_admin=allow_admin)
    return case


async def enforce_limit(session: AsyncSession, settings: Settings, owner: str, visibility: str,
                        exclude: str | None = None, *, creating: bool = False) -> None:
    """At most N drafts / N unlisted per user, also under concurrency: one owner's changes queue on a lock.

    A rejection may put an owner over the draft limit (nothing is lost); until they are back under it, no
    case may be created, of any kind, and none returned to draft.

    Raises:
        ApiError: 409 `draft_limit_reached` / `unlisted_limit_reached`.
    """
    if visibility not in lifecycle.LIMITED:
        return
    limits = {Visibility.DRAFT: settings.draft_limit, Visibility.UNLISTED: settings.unlisted_limit}
    await revisions.lock_owner(session, owner)
    if creating and visibility != Visibility.DRAFT:
        drafts = await revisions.count_cases(session, owner, Visibility.DRAFT)
        if drafts > settings.draft_limit:
            raise ApiError(409, core.limit_code(Visibility.DRAFT),
                           f"you hold {drafts} drafts, more than {settings.draft_limit}; finish or delete some first")
    limit = limits[Visibility(visibility)]
    if lifecycle.over_limit(await revisions.count_cases(session, owner, visibility, exclude), limit):
        raise ApiError(409, core.limit_code(visibility), f"you already have {limit} {visibility} cases")


async def create(session: AsyncSession, values: dict[str, Any], user: Principal, *, settings: Settings) -> Case:
    """A new case of the caller's with `values` (its visibility among them), as it now stands.

    Raises:
        ApiError: 409 `draft_limit_reached` / `unlisted_limit_reached`.
    """
    case_id = repo.new_id("c")
    visibility = values["visibility"]
    await enforce_limit(session, settings, user.id, visibility, creating=True)
    await casestore.insert_case(session, case_id, owner_id=user.id, owner_name=user.name, status=visibility,
                                share_token=_share_token(visibility), **values)
    await repo.record(session, case_id, actor=user.id, action="created", from_status=None, to_status=visibility,
                      revision=1)
    return await repo.load_case(session, case_id, user)


async def submit(session: AsyncSession, case: Case, user: Principal, *, outbox: Outbox, settings: Settings) -> None:
    """Freeze the case as it stands into revision `case.revision` and send that revision to moderation.

    Raises:
        ApiError: 413 `case_too_large` (its text would not fit the event).
    """
    ids = await revisions.image_ids(session, case["id"])
    snapshot = await repo.snapshot(session, case)
    limit = settings.max_case_text_bytes
    if core.text_bytes(snapshot) > limit:  # the submission carries the text: it must fit an event (issue 15)
        raise ApiError(413, "case_too_large", f"a case's text (every field and study's findings) is limited to "
                       f"{limit} bytes of UTF-8 to be submitted; shorten it")
    content = core.freeze(case, await repo.study_rows(session, case["id"]), ids)
    base = await revisions.last_approved(session, case["id"])
    diff = core.revision_diff(base.content if base else None, content, base.n if base else None)
    await revisions.close_open(session, case["id"], RevisionStatus.SUPERSEDED)
    await revisions.insert(session, case["id"], case["revision"], content=content, diff=diff, submitted_by=user.id)
    await outbox.emit(session, CaseSubmitted(
        case_id=case["id"], owner_id=case["owner_id"], owner_name=case["owner_name"], revision=case["revision"],
        case=snapshot, image_ids=ids, diff=RevisionDiff.model_validate(diff)), key=case["id"])


async def edit(session: AsyncSession, case_id: str, changes: dict[str, Any], user: Principal, *, outbox: Outbox,
               settings: Settings) -> Case:
    """The owner's changes applied (the case unchanged when they change nothing), as it now stands.

    Raises:
        ApiError: 404 `not_found`, 403 `not_owner`, 413 `case_too_large` (a resubmission).
    """
    case = await owned_case(session, case_id, user)
    changed = core.changed_fields(case, changes)
    if not changed:
        return case
    revision, before = case["revision"] + 1, case["status"]
    # An edit to a case in (or through) moderation sends it back; the published revision stays public.
    resubmit = lifecycle.resubmits_on_edit(before)
    status = lifecycle.Status.SUBMITTED if resubmit else before
    await casestore.update_case(session, case_id, **changes, revision=revision, status=status,
                                updated_at=datetime.now(UTC))
    case = await repo.load_case(session, case_id, user)
    await outbox.emit(session, core.case_updated(case, changed), key=case_id)
    if resubmit:
        await submit(session, case, user, outbox=outbox, settings=settings)
    await repo.record(session, case_id, actor=user.id, action="edited", from_status=before, to_status=status,
                      revision=revision)
    return case


async def change_visibility(session: AsyncSession, case_id: str, visibility: str, user: Principal, *,
                            outbox: Outbox, settings: Settings) -> Case:
    """The case made a draft or unlisted (withdrawn from the public listing and from moderation), as it now
    stands; unchanged when it already has that visibility.

    Raises:
        ApiError: 404 `not_found`, 403 `not_owner`, 409 `draft_limit_reached` / `unlisted_limit_reached`.
    """
    case = await owned_case(session, case_id, user)
    if case["visibility"] == visibility:
        return case
    await enforce_limit(session, settings, user.id, visibility, exclude=case_id)
    revision = case["revision"] + 1
    # Leaving `unlisted` revokes the share link; coming back to it issues a new one.
    await casestore.update_case(session, case_id, visibility=visibility, status=visibility, listed_public=False,
                                public_snapshot=None, revision=revision, updated_at=datetime.now(UTC),
                                share_token=_share_token(visibility))
    await revisions.close_open(session, case_id, RevisionStatus.WITHDRAWN)
    changed = await repo.load_case(session, case_id, user)
    await outbox.emit(session, core.case_updated(changed, ["visibility"]), key=case_id)
    await repo.record(session, case_id, actor=user.id, action="visibility_changed", from_status=case["status"],
                      to_status=visibility, revision=revision)
    return changed


async def publish(session: AsyncSession, case_id: str, user: Principal, *, outbox: Outbox,
                  settings: Settings) -> Case:
    """The case made public and its current revision sent to moderation, as it now stands.

    Raises:
        ApiError: 404 `not_found`, 403 `not_owner`, 409 `already_submitted`, 413 `case_too_large`.
    """
    case = await owned_case(session, case_id, user)
    if not core.can_publish(case["status"]):
        raise ApiError(409, "already_submitted", "the case is already awaiting moderation")
    revision, before = case["revision"] + 1, case["status"]
    await casestore.update_case(session, case_id, visibility=Visibility.PUBLIC, status=lifecycle.Status.SUBMITTED,
                                moderation_reasons=[], revision=revision, share_token=None,
                                updated_at=datetime.now(UTC))
    case = await repo.load_case(session, case_id, user)
    await submit(session, case, user, outbox=outbox, settings=settings)
    await repo.record(session, case_id, actor=user.id, action="submitted", from_status=before,
                      to_status=lifecycle.Status.SUBMITTED, revision=revision)
    return case


async def renew_share_link(session: AsyncSession, case_id: str, user: Principal) -> Case:
    """The unlisted case with a new share link (the old one stops working), as it now stands.

    Raises:
        ApiError: 404 `not_found`, 403 `not_owner`, 409 `not_unlisted`.
    """
    case = await owned_case(session, case_id, user)
    if case["visibility"] != Visibility.UNLISTED:
        raise ApiError(409, "not_unlisted", "only unlisted cases have a share link")
    await revisions.set_share_token(session, case_id, secrets.token_urlsafe(24))
    await repo.record(session, case_id, actor=user.id, action="share_link_renewed", from_status=case["status"],
                      to_status=case["status"], revision=case["revision"])
    return await repo.load_case(session, case_id, user)


async def delete(session: AsyncSession, case_id: str, user: Principal, *, outbox: Outbox) -> None:
    """The case's rows gone (its studies, images, revisions, history and exports with it); its objects are
    the caller's to remove once this has committed.

    Raises:
        ApiError: 404 `not_found`, 403 `not_owner` (neither the owner nor an admin).
    """
    case = await owned_case(session, case_id, user, allow_admin=True)
    await revisions.delete_exports_of(session, case_id)  # the export service removes the archives
    await casestore.delete_case(session, case_id)
    await outbox.emit(session, CaseDeleted(case_id=case_id, owner_id=case["owner_id"], deleted_by=user.id),
                      key=case_id)


async def revision_view(session: AsyncSession, case_id: str, user: Principal
                        ) -> tuple[list[Any], dict[str, Any] | None]:
    """(the case's frozen revisions, the pending working copy or None) for the owner and editors.

    Raises:
        ApiError: 404 `not_found` (cannot see the case), 403 `not_owner` (a reader).
    """
    case = await repo.load_case(session, case_id, user)
    if case["owner_id"] != user.id and not lifecycle.is_editor(user.roles):
        raise ApiError(403, "not_owner", "only the owner and editors see a case's revisions")
    frozen = await revisions.all_of(session, case_id)
    current = core.freeze(case, await repo.study_rows(session, case_id), await revisions.image_ids(session, case_id))
    pending = None
    if not frozen or frozen[-1].content != current:
        n = case["revision"] if all(r.n != case["revision"] for r in frozen) else case["revision"] + 1
        base = await revisions.last_approved(session, case_id)
        pending = {"n": n, "content": current,
                   "diff": core.revision_diff(base.content if base else None, current, base.n if base else None)}
    return frozen, pending
