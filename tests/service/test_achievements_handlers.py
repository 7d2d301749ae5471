"""Achievements' handlers on the in-memory broker: levels announced once, out-of-order events, deletion final."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter
from service_tier import running

from casebook_achievements import core
from casebook_achievements.adapters.memory import MemoryCollector
from casebook_achievements.handlers import handlers
from casebook_events import AchievementAwarded, CaseApproved, CaseDeleted, CaseUpdated, Topic

pytestmark = pytest.mark.service

T = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)


def approved(case_id: str, revision: int = 1, owner: str = "alice", editor: str = "ed") -> CaseApproved:
    return CaseApproved(case_id=case_id, owner_id=owner, editor_id=editor, revision=revision, approved_at=T)


def withdrawn(case_id: str, revision: int) -> CaseUpdated:
    return CaseUpdated(case_id=case_id, owner_id="alice", revision=revision, status="unlisted",
                       visibility="unlisted", listed_public=False)


def deleted(case_id: str) -> CaseDeleted:
    return CaseDeleted(case_id=case_id, owner_id="alice", deleted_by="alice")


def _run(store: MemoryCollector):  # type: ignore[no-untyped-def]
    awarded = Counter("awarded", "levels awarded", registry=CollectorRegistry())
    return running("achievements", handlers(collector=lambda d: store, awarded=awarded), stores=[store],
                   watch=[Topic.ACHIEVEMENT_AWARDED])


def levels(events: list[AchievementAwarded]) -> list[tuple[int, int, str]]:
    return [(e.level, e.count, e.tier) for e in events]


async def test_levels_are_announced_as_the_thresholds_are_reached() -> None:
    store = MemoryCollector()
    async with _run(store) as svc:
        for n in range(1, 7):
            await svc.send(approved(f"c_{n}"))
        # Thresholds are the triangular numbers: 1, 3, 6 cases for levels 1, 2, 3.
        assert levels(svc.events(Topic.ACHIEVEMENT_AWARDED)) == [(1, 1, "bronze"), (2, 3, "bronze"),
                                                                 (3, 6, "bronze")]
        assert core.threshold(3) == 6 and await store.count("alice") == 6


async def test_a_redelivered_or_replayed_approval_announces_nothing_twice() -> None:
    store = MemoryCollector()
    async with _run(store) as svc:
        env = await svc.send(approved("c_1"))
        await svc.redeliver(env)
        await svc.send(approved("c_1"))  # the same approval under a new event id
        assert levels(svc.events(Topic.ACHIEVEMENT_AWARDED)) == [(1, 1, "bronze")]
        assert await store.count("alice") == 1


async def test_a_level_once_announced_is_not_announced_again_after_losing_and_regaining_cases() -> None:
    store = MemoryCollector()
    async with _run(store) as svc:
        for n in (1, 2, 3):
            await svc.send(approved(f"c_{n}"))
        await svc.send(withdrawn("c_3", revision=2))
        await svc.send(approved("c_3", revision=3))
        assert levels(svc.events(Topic.ACHIEVEMENT_AWARDED)) == [(1, 1, "bronze"), (2, 3, "bronze")]


async def test_an_old_approval_arriving_after_a_withdrawal_does_not_count() -> None:
    store = MemoryCollector()
    async with _run(store) as svc:
        await svc.send(withdrawn("c_1", revision=5))
        await svc.send(approved("c_1", revision=4))
        assert await store.count("alice") == 0
        assert svc.events(Topic.ACHIEVEMENT_AWARDED) == []


async def test_a_deletion_is_final_whatever_arrives_after_it() -> None:
    store = MemoryCollector()
    async with _run(store) as svc:
        await svc.send(approved("c_1"))
        await svc.send(deleted("c_1"))
        await svc.send(approved("c_1", revision=9))
        assert await store.count("alice") == 0
        known = await store.case("c_1")
        assert known is not None and known.deleted


async def test_self_approvals_earn_nothing() -> None:
    store = MemoryCollector()
    async with _run(store) as svc:
        await svc.send(approved("c_1", owner="alice", editor="alice"))
        assert await store.count("alice") == 0 and svc.events(Topic.ACHIEVEMENT_AWARDED) == []


async def test_the_award_counter_moves_only_for_committed_announcements() -> None:
    store = MemoryCollector()
    awarded = Counter("awarded", "levels awarded", registry=CollectorRegistry())
    async with running("achievements", handlers(collector=lambda d: store, awarded=awarded),
                       stores=[store]) as svc:
        await svc.send(approved("c_1"))
        await svc.send(approved("c_2"))
        assert awarded._value.get() == 1
