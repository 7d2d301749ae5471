"""Delivery guarantees of the shared runtime, on the real broker and database: outbox → Kafka → idempotent
consumer, a broker SIGKILL mid-stream, and a poison message going to the DLQ without blocking its partition."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from harness import fresh_database
from sqlalchemy import Column, Integer, String, Table, func, select, text

from casebook_events import CaseDeleted, encode, make_envelope
from casebook_platform.consumer import Delivery, EventConsumer
from casebook_platform.db import Database, new_metadata, platform_tables
from casebook_platform.kafka import make_broker
from casebook_platform.metrics import Metrics
from casebook_platform.outbox import OutboxRelay, enqueue
from casebook_platform.settings import CommonSettings

pytestmark = [pytest.mark.integration]

metadata = new_metadata()
tables = platform_tables(metadata)
effects = Table("effects", metadata, Column("seq", Integer, primary_key=True, autoincrement=True),
                Column("event_id", String(64), nullable=False), Column("case_id", String(64), nullable=False),
                Column("n", Integer, nullable=False))


def settings(stack: Any, name: str, db_url: str, group: str) -> CommonSettings:
    return CommonSettings(service_name=name, kafka_bootstrap_servers=f"127.0.0.1:{stack.ports.kafka}",
                          database_url=db_url, consumer_group=group, consumer_max_attempts=3,
                          consumer_retry_backoff_s=0.05, kafka_session_timeout_ms=4000)


async def make_db(stack: Any, prefix: str) -> Database:
    db = Database(await asyncio.to_thread(fresh_database, stack, prefix))
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return db


class Pair:
    """A producing service (outbox + relay) and a consuming service (idempotent consumer), each with its DB."""

    def __init__(self, stack: Any, topic_suffix: str) -> None:
        self.stack = stack
        self.group = f"test-{uuid.uuid4().hex[:8]}"
        self.topic_suffix = topic_suffix

    async def start(self, handler_fail: set[int] | None = None) -> Pair:
        self.pdb = await make_db(self.stack, "producer")
        self.cdb = await make_db(self.stack, "consumer")
        ps = settings(self.stack, "producer", self.pdb.engine.url.render_as_string(hide_password=False), self.group)
        cs = settings(self.stack, "consumer", self.cdb.engine.url.render_as_string(hide_password=False), self.group)
        self.pbroker = make_broker(ps)
        self.relay = OutboxRelay(sessions=self.pdb.sessions, tables=tables, broker=self.pbroker,
                                 metrics=Metrics("producer"), poll_interval=0.05)
        self.cbroker = make_broker(cs)
        self.metrics = Metrics("consumer")

        async def on_deleted(d: Delivery) -> None:
            e: CaseDeleted = d.event
            if not e.deleted_by.isdigit():
                return  # an event of another test on the shared topic (the group starts at `earliest`)
            n = int(e.deleted_by)
            await d.session.execute(effects.insert().values(event_id=d.envelope.event_id, case_id=e.case_id, n=n))

        self.consumer = EventConsumer(settings=cs, broker=self.cbroker, db=self.cdb, tables=tables,
                                      metrics=self.metrics, relay=None, handlers={"case.deleted": on_deleted})
        self.consumer.subscribe()
        await self.pbroker.start()
        await self.cbroker.start()
        self.relay_task = asyncio.create_task(self.relay.run())
        return self

    async def write(self, case_id: str, n: int) -> None:
        env = make_envelope(CaseDeleted(case_id=case_id, owner_id="u", deleted_by=str(n)), producer="producer",
                            key=case_id)
        async with self.pdb.transaction() as s:
            await enqueue(s, tables, env)
        self.relay.nudge()

    async def effects_of(self, case_ids: set[str]) -> list[Any]:
        async with self.cdb.sessions() as s:
            return list((await s.execute(select(effects).where(effects.c.case_id.in_(case_ids))
                                         .order_by(effects.c.seq))).all())

    async def stop(self) -> None:
        self.relay.stop()
        self.relay_task.cancel()
        await asyncio.gather(self.relay_task, return_exceptions=True)
        await self.cbroker.stop()
        await self.pbroker.stop()
        await self.pdb.dispose()
        await self.cdb.dispose()


async def wait_until(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = await pred()
        if v:
            return v
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def test_outbox_event_arrives_once_in_another_service(stack: Any) -> None:
    pair = await Pair(stack, "once").start()
    try:
        case = f"c-{uuid.uuid4().hex}"
        await pair.write(case, 1)

        async def arrived() -> list[Any]:
            return await pair.effects_of({case})

        rows = await wait_until(arrived, 60, "the event to arrive")
        await asyncio.sleep(2)  # give a duplicate the chance to show up
        rows = await pair.effects_of({case})
        assert len(rows) == 1 and rows[0].n == 1
        async with pair.pdb.sessions() as s:  # relayed rows leave the outbox
            assert (await s.execute(select(func.count()).select_from(tables.outbox))).scalar_one() == 0
    finally:
        await pair.stop()


async def test_redelivered_event_changes_nothing(stack: Any) -> None:
    pair = await Pair(stack, "dup").start()
    try:
        case = f"c-{uuid.uuid4().hex}"
        env = make_envelope(CaseDeleted(case_id=case, owner_id="u", deleted_by="7"), producer="t", key=case)
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.ports.kafka}")
        await producer.start()
        for _ in range(3):  # the same event, delivered three times
            await producer.send_and_wait("case.deleted", encode(env), key=case.encode())
        await producer.stop()

        async def arrived() -> list[Any]:
            return await pair.effects_of({case})

        await wait_until(arrived, 60, "the event")
        await asyncio.sleep(2)
        assert len(await pair.effects_of({case})) == 1
        async with pair.cdb.sessions() as s:
            q = select(func.count()).select_from(tables.processed).where(tables.processed.c.event_id == env.event_id)
            assert (await s.execute(q)).scalar_one() == 1
        assert pair.metrics.events_duplicate.labels("consumer", "case.deleted")._value.get() >= 2
    finally:
        await pair.stop()


@pytest.mark.slow
async def test_broker_sigkill_mid_stream_loses_nothing_and_applies_nothing_twice(stack: Any) -> None:
    pair = await Pair(stack, "kill").start()
    cases = [f"c-{uuid.uuid4().hex}" for _ in range(10)]
    total = 300
    try:
        for i in range(total // 2):
            await pair.write(cases[i % 10], i)
        await asyncio.sleep(0.5)
        stack.kill("broker")  # mid-stream: some relayed, some consumed, some neither
        for i in range(total // 2, total):  # the service keeps accepting work while the broker is down
            await pair.write(cases[i % 10], i)
        await asyncio.sleep(1)
        await asyncio.to_thread(stack.restart_broker)

        async def all_arrived() -> bool:
            return len(await pair.effects_of(set(cases))) >= total

        await wait_until(all_arrived, 180, f"{total} effects")
        await asyncio.sleep(3)
        rows = await pair.effects_of(set(cases))
        assert len(rows) == total, "an effect was applied twice"
        assert sorted(r.n for r in rows) == list(range(total)), "an event was lost"
        for c in cases:  # one case's events stay in order
            ns = [r.n for r in rows if r.case_id == c]
            assert ns == sorted(ns), f"events of {c} out of order: {ns}"
    finally:
        await pair.stop()


async def test_poison_message_goes_to_dlq_and_later_messages_still_flow(stack: Any) -> None:
    pair = await Pair(stack, "dlq").start()
    try:
        case = f"c-{uuid.uuid4().hex}"
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.ports.kafka}")
        await producer.start()
        poison = json.dumps({"not": "an envelope", "case": case}).encode()
        await producer.send_and_wait("case.deleted", poison, key=case.encode())  # same key → same partition
        later = make_envelope(CaseDeleted(case_id=case, owner_id="u", deleted_by="5"), producer="t", key=case)
        await producer.send_and_wait("case.deleted", encode(later), key=case.encode())
        await producer.stop()

        async def arrived() -> list[Any]:
            return await pair.effects_of({case})

        rows = await wait_until(arrived, 60, "the message after the poison one")
        assert [r.n for r in rows] == [5]

        consumer = AIOKafkaConsumer("case.deleted.dlq", bootstrap_servers=f"127.0.0.1:{stack.ports.kafka}",
                                    group_id=f"dlq-reader-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest",
                                    session_timeout_ms=4000)
        await consumer.start()
        found = None
        try:
            deadline = time.monotonic() + 40
            while found is None and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for r in records:
                        if r.value == poison:
                            found = r
        finally:
            await consumer.stop()
        assert found is not None, "the poison message did not reach case.deleted.dlq"
        headers = {k: v.decode() for k, v in found.headers}
        assert headers["x-original-topic"] == "case.deleted"
        assert "ValidationError" in headers["x-error"]
        assert pair.metrics.dlq_messages.labels("consumer", "case.deleted")._value.get() >= 1
    finally:
        await pair.stop()


async def test_failing_handler_is_retried_then_dead_lettered(stack: Any) -> None:
    """A handler error is retried a bounded number of times, then the message goes to the DLQ."""
    pair = Pair(stack, "retry")
    await pair.start()
    calls = {"n": 0}
    case = f"c-{uuid.uuid4().hex}"

    async def always_fails(d: Delivery) -> None:
        if d.event.case_id == case:  # the subscriber also sees older messages of the topic
            calls["n"] += 1
        await d.session.execute(text("SELECT 1/0"))

    pair.consumer.handlers["case.deleted"] = always_fails
    try:
        raw = encode(make_envelope(CaseDeleted(case_id=case, owner_id="u", deleted_by="1"), producer="t", key=case))
        outcome = await pair.consumer.process("case.deleted", raw, key=case.encode())
        assert outcome == "dead_lettered"
        assert calls["n"] == 3  # consumer_max_attempts
        async with pair.cdb.sessions() as s:  # the failed attempts left no processed-record behind
            q = select(func.count()).select_from(tables.processed)
            assert (await s.execute(q)).scalar_one() == 0
    finally:
        await pair.stop()
