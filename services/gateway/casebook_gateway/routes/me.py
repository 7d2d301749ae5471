"""The caller, with the limits that apply to them."""

from fastapi import APIRouter

from casebook_events.lifecycle import Visibility
from casebook_gateway.adapters import revisions
from casebook_gateway.deps import DatabaseDep, SettingsDep
from casebook_gateway.schemas import Limit, Me, MyLimits
from casebook_platform.auth import CurrentUser

router = APIRouter(prefix="/v1", tags=["me"])


@router.get("/me", response_model=Me, summary="The caller's id, name and roles, and how much of each limit they use")
async def me(user: CurrentUser, db: DatabaseDep, settings: SettingsDep) -> Me:
    async with db.sessions() as session:
        drafts = await revisions.count_cases(session, user.id, Visibility.DRAFT)
        unlisted = await revisions.count_cases(session, user.id, Visibility.UNLISTED)
    limits = MyLimits(drafts=Limit(used=drafts, max=settings.draft_limit),
                      unlisted=Limit(used=unlisted, max=settings.unlisted_limit))
    return Me(id=user.id, name=user.name, roles=sorted(user.roles), limits=limits)
