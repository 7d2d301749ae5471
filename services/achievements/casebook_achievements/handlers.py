"""Event handlers of the achievements service: state is derived from events only, so a replay rebuilds it."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter

from casebook_achievements import core
from casebook_achievements.adapters.collector import SqlCollector
from casebook_achievements.ports import Collector, CollectorCase
from casebook_events import AchievementAwarded, CaseApproved, CaseDeleted, CaseUpdated, Topic, lifecycle
from casebook_platform.consumer import Delivery, Handler
from casebook_platform.service import Runtime

CollectorFor = Callable[[Delivery], Collector]


async def set_case(store: Collector, case_id: str, owner_id: str, *, public: bool | None = None,
                   deleted: bool = False, revision: int = 0) -> None:
    """Record a case's state; an older revision never overrides a newer one, and a deletion is final."""
    known = await store.case(case_id)
    if known is None:
        await store.put_case(CollectorCase(case_id, owner_id, bool(public), deleted, revision))
        return
    if not lifecycle.newer_wins(known.revision, revision or known.revision, deleted=known.deleted):
        return
    await store.put_case(CollectorCase(case_id, known.owner_id, known.public if public is None else public, deleted,
                                       max(revision, known.revision)))


async def award(d: Delivery, store: Collector, user_id: str, awarded: Counter) -> None:
    """Announce the Collector level `user_id` has newly reached, if any."""
    count = await store.count(user_id)
    level = core.newly_reached(await store.awarded_level(user_id), count)
    if level is None:
        return
    await store.save_award(user_id, level)
    await d.emit(AchievementAwarded(user_id=user_id, achievement="collector", level=level,
                                    tier=core.tier(level) or "bronze", count=count), key=user_id)

    async def inc() -> None:  # after the commit, so a retried transaction does not count twice
        awarded.inc()

    d.after_commit.append(inc)


def handlers(*, collector: CollectorFor, awarded: Counter) -> dict[str, Handler]:
    """The handler of each consumed topic; `collector` gives the store within a delivery's transaction."""

    async def approved(d: Delivery) -> None:
        e: CaseApproved = d.event
        if not lifecycle.may_decide(e.editor_id, e.owner_id):
            return  # a self-approval earns nothing (moderation refuses them; this holds for a replayed log too)
        store = collector(d)
        await set_case(store, e.case_id, e.owner_id, public=True, revision=e.revision)
        await award(d, store, e.owner_id, awarded)

    async def updated(d: Delivery) -> None:
        e: CaseUpdated = d.event
        if not e.listed_public:
            await set_case(collector(d), e.case_id, e.owner_id, public=False, revision=e.revision)

    async def deleted(d: Delivery) -> None:
        e: CaseDeleted = d.event
        await set_case(collector(d), e.case_id, e.owner_id, public=False, deleted=True)

    return {Topic.CASE_APPROVED: approved, Topic.CASE_UPDATED: updated, Topic.CASE_DELETED: deleted}


def build_handlers(rt: Runtime) -> dict[str, Handler]:
    """The handlers on PostgreSQL, in each delivery's transaction (what the app factory wires)."""
    awarded = rt.metrics.counter("casebook_achievements_awarded_total", "Achievement levels awarded")
    return handlers(collector=lambda d: SqlCollector(d.session), awarded=awarded)
