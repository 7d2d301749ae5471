"""HTTP read API of the achievements service (public)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from casebook_achievements import core
from casebook_achievements.adapters.collector import collector_count
from casebook_platform.deps import SessionDep

router = APIRouter(prefix="/v1", tags=["achievements"])


class CollectorOut(BaseModel):
    count: int
    level: int
    tier: str | None
    next_level_at: int | None


class AchievementsOut(BaseModel):
    collector: CollectorOut


class LevelOut(BaseModel):
    level: int
    tier: str
    threshold: int


@router.get("/users/{user_id}/achievements", response_model=AchievementsOut,
            summary="A user's achievements (Collector: approved public cases)")
async def user_achievements(user_id: str, session: SessionDep) -> AchievementsOut:
    s = core.standing(await collector_count(session, user_id))
    return AchievementsOut(collector=CollectorOut(count=s.count, level=s.level, tier=s.tier,
                                                  next_level_at=s.next_level_at))


@router.get("/achievements/levels", response_model=dict[str, list[LevelOut]],
            summary="The published Collector thresholds")
async def levels() -> dict[str, list[LevelOut]]:
    return {"collector": [LevelOut(level=i + 1, tier=core.tier(i + 1) or "", threshold=t)
                          for i, t in enumerate(core.THRESHOLDS)]}
