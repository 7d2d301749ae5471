"""The Atom feed of featured cases and Cases of the Month, from what featuring's handlers recorded in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from atom_feed import parse_atom
from service_tier import running

from casebook_events import CaseApproved, CaseDeleted, CaseUpdated
from casebook_featuring import core
from casebook_featuring.adapters.memory import MemoryCatalog
from casebook_featuring.handlers import handlers

pytestmark = pytest.mark.service

T = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
BASE = "https://casebook.example.org"


def approved(case_id: str, title: str, at: datetime, revision: int = 1) -> CaseApproved:
    return CaseApproved(case_id=case_id, owner_id="alice", editor_id="ed", revision=revision, title=title,
                        approved_at=at)


async def test_feed_lists_featured_cases_and_picks_newest_first_and_drops_removed_cases() -> None:
    store = MemoryCatalog()
    async with running("featuring", handlers(catalog=lambda d: store), stores=[store]) as svc:
        await svc.send(approved("c_1", "Osteoid osteoma", T - timedelta(days=40)))
        await svc.send(approved("c_2", "Tension pneumothorax <b>&</b>\x07", T - timedelta(days=20)))
        await svc.send(approved("c_3", "Intussusception", T - timedelta(days=10)))
        await svc.send(approved("c_4", "Will be deleted", T - timedelta(days=10)))
        store.add_featured("c_1", "Osteoid osteoma", "ed", T)
        store.add_featured("c_2", "Tension pneumothorax", "ed", T + timedelta(hours=1))
        store.add_featured("c_4", "Will be deleted", "ed", T + timedelta(hours=2))
        store.save_pick("2026-11", "c_1", "ed", T + timedelta(hours=3))
        store.save_pick("2026-10", "c_3", "ed", T - timedelta(days=3))
        store.save_pick("2026-09", "c_4", "ed", T - timedelta(days=4))
        # a de-listing and a deletion take cases out of the feed, their picks included
        await svc.send(CaseDeleted(case_id="c_4", owner_id="alice", deleted_by="alice"))
        # a newer approval (a new title) after featuring makes that entry updated
        await svc.send(approved("c_1", "Osteoid osteoma of the femur", T + timedelta(hours=4), revision=2))
        await svc.send(approved("c_3", "Intussusception", T - timedelta(days=10)))

        body = core.atom_feed(await store.feed_items(50), base_url=BASE + "/", now=T)
    feed, entries = parse_atom(body)
    assert [(e.category, e.link) for e in entries] == [
        ("featured", f"{BASE}/cases/c_1"),  # updated by the re-approval at T+4h
        ("case-of-the-month", f"{BASE}/cases/c_1"),
        ("featured", f"{BASE}/cases/c_2"),
        ("case-of-the-month", f"{BASE}/cases/c_3"),
    ]
    assert entries[0].title == "Osteoid osteoma of the femur" and entries[0].updated == T + timedelta(hours=4)
    assert entries[0].published == T
    assert entries[1].title == "Case of the Month, November 2026: Osteoid osteoma of the femur"
    assert entries[2].title == "Tension pneumothorax <b>&</b>"  # escaped as text; the bell (not XML) dropped
    assert entries[3].title == "Case of the Month, October 2026: Intussusception"
    assert entries[1].id == f"{BASE}/v1/featured.atom#case-of-the-month-2026-11"
    assert feed.findtext("{http://www.w3.org/2005/Atom}updated") == "2026-11-02T14:15:00Z"
    assert "c_4" not in body.decode()

    _, first_two = parse_atom(core.atom_feed(await store.feed_items(2), base_url=BASE, now=T))
    assert [e.id for e in first_two] == [e.id for e in entries[:2]]


async def test_a_replaced_pick_is_the_same_entry_updated_and_an_empty_feed_is_valid() -> None:
    store = MemoryCatalog()
    _, none = parse_atom(core.atom_feed(await store.feed_items(50), base_url=BASE, now=T))
    assert none == []
    async with running("featuring", handlers(catalog=lambda d: store), stores=[store]) as svc:
        await svc.send(approved("c_1", "First pick", T - timedelta(days=20)))
        await svc.send(approved("c_2", "Second pick", T - timedelta(days=21)))
        store.save_pick("2026-11", "c_1", "ed", T)
        store.save_pick("2026-11", "c_2", "ed", T + timedelta(minutes=5))
        await svc.send(CaseUpdated(case_id="c_1", owner_id="alice", revision=2, status="unlisted",
                                   visibility="unlisted", listed_public=False))
    _, entries = parse_atom(core.atom_feed(await store.feed_items(50), base_url=BASE, now=T))
    assert [(e.id.rsplit("#", 1)[1], e.title, e.updated) for e in entries] == [
        ("case-of-the-month-2026-11", "Case of the Month, November 2026: Second pick", T + timedelta(minutes=5))]
