"""Featuring's handlers on the in-memory broker: duplicates, out-of-order events, deletion is final."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from service_tier import running

from casebook_events import CaseApproved, CaseDeleted, CaseUpdated, Topic
from casebook_featuring.adapters.memory import MemoryCatalog
from casebook_featuring.handlers import handlers

pytestmark = pytest.mark.service

T = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)


def approved(revision: int = 3, title: str = "Osteoid osteoma", case_id: str = "c_1") -> CaseApproved:
    return CaseApproved(case_id=case_id, owner_id="alice", editor_id="ed", revision=revision, title=title,
                        approved_at=T)


def delisted(revision: int) -> CaseUpdated:
    return CaseUpdated(case_id="c_1", owner_id="alice", revision=revision, status="unlisted", visibility="unlisted",
                       listed_public=False)


def deleted() -> CaseDeleted:
    return CaseDeleted(case_id="c_1", owner_id="alice", deleted_by="alice")


def _run(store: MemoryCatalog):  # type: ignore[no-untyped-def]
    return running("featuring", handlers(catalog=lambda d: store), stores=[store])


async def test_an_approval_lists_the_case_once_however_often_it_arrives() -> None:
    store = MemoryCatalog()
    async with _run(store) as svc:
        env = await svc.send(approved())
        await svc.redeliver(env)  # the same event again (a rebalance): skipped as already processed
        await svc.send(approved())  # the same approval under a new id (an outbox row relayed twice)
        assert store.listed() == ["c_1"]
        assert store.cases["c_1"]["revision"] == 3
        assert env.event_id in svc.consumer.processed and len(svc.consumer.processed) == 2
        duplicates = svc.consumer.metrics.registry.get_sample_value(
            "casebook_events_duplicate_total", {"service": "featuring", "topic": Topic.CASE_APPROVED})
        assert duplicates == 1


async def test_an_older_approval_never_overrides_a_newer_de_listing() -> None:
    store = MemoryCatalog()
    async with _run(store) as svc:
        await svc.send(approved(revision=3))
        await svc.send(delisted(revision=4))
        await svc.send(approved(revision=3))  # late redelivery of the old approval
        assert store.listed() == []
        await svc.send(approved(revision=5, title="Osteoid osteoma, revised"))  # a newer approval re-lists
        assert store.listed() == ["c_1"]
        assert store.cases["c_1"]["title"] == "Osteoid osteoma, revised"


async def test_a_de_listing_older_than_the_approval_changes_nothing() -> None:
    store = MemoryCatalog()
    async with _run(store) as svc:
        await svc.send(approved(revision=5))
        await svc.send(delisted(revision=4))
        assert store.listed() == ["c_1"]


async def test_a_deletion_is_final_even_when_it_arrives_before_the_approval() -> None:
    store = MemoryCatalog()
    async with _run(store) as svc:
        await svc.send(deleted())  # topics are not ordered with each other: the deletion may come first
        await svc.send(approved(revision=7))
        assert store.listed() == []
        assert store.cases["c_1"]["deleted"] is True
        await svc.send(delisted(revision=9))
        assert store.cases["c_1"]["deleted"] is True


async def test_leaving_the_listings_takes_the_case_off_the_featured_list() -> None:
    store = MemoryCatalog()
    async with _run(store) as svc:
        await svc.send(approved(revision=3))
        store.add_featured("c_1", "Osteoid osteoma", "ed", T)
        await svc.send(approved(revision=4, title="Renamed"))
        assert store.featured["c_1"]["title"] == "Renamed"  # the featured list follows the approved title
        await svc.send(deleted())
        assert store.featured == {} and store.listed() == []


async def test_updates_that_keep_the_case_listed_change_nothing() -> None:
    store = MemoryCatalog()
    async with _run(store) as svc:
        await svc.send(approved(revision=3))
        await svc.send(CaseUpdated(case_id="c_1", owner_id="alice", revision=4, status="approved",
                                   visibility="public", listed_public=True, changed=["discussion"]))
        assert store.listed() == ["c_1"] and store.cases["c_1"]["revision"] == 3


async def test_a_payload_that_breaks_its_schema_goes_to_the_dead_letter_topic_untouched() -> None:
    store = MemoryCatalog()
    async with _run(store) as svc:
        env = await svc.send(approved())
        broken = env.model_copy(update={"event_id": "e-2", "payload": {**env.payload, "revision": "three"}})
        await svc.broker.publish(broken.model_dump_json().encode(), Topic.CASE_APPROVED, key=b"c_1")
        await svc.send_raw(Topic.CASE_DELETED, b"not an envelope")
        [bad_approval] = svc.dead_letters(Topic.CASE_APPROVED)
        assert "ValidationError" in bad_approval.headers["x-error"]
        assert len(svc.dead_letters(Topic.CASE_DELETED)) == 1
        assert store.listed() == ["c_1"]  # neither poison message changed anything
