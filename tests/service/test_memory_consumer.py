"""The in-memory unit of work behaves as the PostgreSQL one: once per event id, all or nothing, then publish."""

from __future__ import annotations

import pytest
from service_tier import running

from casebook_events import CaseDeleted, CaseFeatured, Topic
from casebook_platform.consumer import Delivery, PermanentError
from casebook_platform.memory import MemoryStore

pytestmark = pytest.mark.service


class Tally(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.state = {"seen": []}


def deletion(case_id: str = "c_1") -> CaseDeleted:
    return CaseDeleted(case_id=case_id, owner_id="alice", deleted_by="alice")


async def test_an_event_id_is_applied_once_and_its_follow_up_published_after_success() -> None:
    tally = Tally()

    async def on_deleted(d: Delivery) -> None:
        tally.state["seen"].append(d.event.case_id)
        await d.emit(CaseFeatured(case_id=d.event.case_id, editor_id="ed", featured_at=d.envelope.occurred_at),
                     key=d.event.case_id)

    async with running("featuring", {Topic.CASE_DELETED: on_deleted}, stores=[tally],
                       watch=[Topic.CASE_FEATURED]) as svc:
        env = await svc.send(deletion())
        await svc.redeliver(env)
        assert tally.state["seen"] == ["c_1"]
        [follow_up] = svc.events(Topic.CASE_FEATURED)
        assert follow_up.case_id == "c_1"
        [published] = svc.received[Topic.CASE_FEATURED]
        assert published.raw_message.key == b"c_1"


async def test_a_failing_handler_leaves_no_trace_and_its_message_is_dead_lettered() -> None:
    tally = Tally()

    async def on_deleted(d: Delivery) -> None:
        tally.state["seen"].append(d.event.case_id)
        await d.emit(CaseFeatured(case_id="c_1", editor_id="ed", featured_at=d.envelope.occurred_at), key="c_1")
        raise PermanentError("this case can never be handled")

    async with running("featuring", {Topic.CASE_DELETED: on_deleted}, stores=[tally],
                       watch=[Topic.CASE_FEATURED]) as svc:
        env = await svc.send(deletion())
        assert tally.state["seen"] == []  # rolled back after every attempt
        assert svc.events(Topic.CASE_FEATURED) == []  # nothing emitted from a failed transaction
        assert env.event_id not in svc.consumer.processed
        [dead] = svc.dead_letters(Topic.CASE_DELETED)
        assert "this case can never be handled" in dead.headers["x-error"]
        assert dead.headers["x-original-topic"] == Topic.CASE_DELETED


async def test_refused_and_misrouted_messages_are_dead_lettered() -> None:
    async def on_deleted(d: Delivery) -> None:
        raise PermanentError("refused")

    async with running("featuring", {Topic.CASE_DELETED: on_deleted}) as svc:
        env = await svc.send(deletion())  # handled: raises, dead-lettered
        wrong = env.model_copy(update={"event_id": "other", "type": Topic.CASE_APPROVED})
        await svc.send_raw(Topic.CASE_DELETED, wrong.model_dump_json().encode())
        assert len(svc.dead_letters(Topic.CASE_DELETED)) == 2
