"""The caller."""

from fastapi import APIRouter

from casebook_gateway.schemas import Me
from casebook_platform.auth import CurrentUser

router = APIRouter(prefix="/v1", tags=["me"])


@router.get("/me", response_model=Me, summary="The caller's id, name and roles")
async def me(user: CurrentUser) -> Me:
    return Me(id=user.id, name=user.name, roles=sorted(user.roles))
