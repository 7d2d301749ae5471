"""The retry and dead-letter policy on the real broker and database: a dependency that is down is waited for
(never dead-lettered), a broken message is dead-lettered at once, a failed batch rewinds every partition it
touched, and an outbox row the broker refuses is parked without holding back the rows behind it."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import func, select
from test_delivery import Pair, effects, tables, wait_until

from casebook_events import CaseDeleted, encode, make_envelope
from casebook_platform.consumer import Delivery, PermanentError, rewind
from casebook_platform.failures import classify
from casebook_platform.outbox import LAST_ERROR, PARKED, enqueue

pytestmark = [pytest.mark.integration]


async def _closed_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return port


async def test_dependency_outage_is_waited_out_and_never_dead_lettered(stack: Any) -> None:
    """The handler needs a TCP service that refuses connections for 4 s: the partition waits, says so, resumes."""
    pair = await Pair(stack, "outage").start()
    port = await _closed_port()
    case = f"c-{uuid.uuid4().hex}"
    calls = {"n": 0}

    async def needs_dependency(d: Delivery) -> None:
        if d.event.case_id == case:
            calls["n"] += 1
            _, writer = await asyncio.open_connection("127.0.0.1", port)  # refused until the server is up
            writer.close()
        if not d.event.deleted_by.isdigit():
            return  # another test's event on the shared topic
        await d.session.execute(effects.insert().values(event_id=d.envelope.event_id, case_id=d.event.case_id,
                                                        n=int(d.event.deleted_by)))

    pair.consumer.handlers["case.deleted"] = needs_dependency
    server = None
    try:
        raw = encode(make_envelope(CaseDeleted(case_id=case, owner_id="u", deleted_by="1"), producer="t", key=case))
        task = asyncio.create_task(pair.consumer.process("case.deleted", raw, partition=3, offset=7,
                                                         key=case.encode()))
        await asyncio.sleep(4)
        assert not task.done(), "a transient failure must not end the delivery"
        stall = pair.consumer.stalls[("case.deleted", 3)]
        assert stall.dependency == "network" and "Connect" in stall.error
        assert pair.metrics.consumer_stalled.labels("consumer", "case.deleted", "3")._value.get() == 1
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        outcome = await asyncio.wait_for(task, timeout=30)
        assert outcome == "processed"
        assert calls["n"] >= 3
        assert ("case.deleted", 3) not in pair.consumer.stalls
        assert pair.metrics.consumer_stalled.labels("consumer", "case.deleted", "3")._value.get() == 0
        assert [r.n for r in await pair.effects_of({case})] == [1]
    finally:
        if server is not None:
            server.close()
        await pair.stop()


async def test_handler_declared_permanent_is_dead_lettered_at_once(stack: Any) -> None:
    pair = await Pair(stack, "perm").start()
    calls = {"n": 0}

    async def refuses(d: Delivery) -> None:
        calls["n"] += 1
        raise PermanentError("this case can never be handled")

    pair.consumer.handlers["case.deleted"] = refuses
    try:
        case = f"c-{uuid.uuid4().hex}"
        raw = encode(make_envelope(CaseDeleted(case_id=case, owner_id="u", deleted_by="1"), producer="t", key=case))
        assert await pair.consumer.process("case.deleted", raw, key=case.encode()) == "dead_lettered"
        assert calls["n"] == 1
        assert pair.metrics.dlq_messages.labels("consumer", "case.deleted")._value.get() >= 1
    finally:
        await pair.stop()


def test_classification_of_common_failures() -> None:
    from pydantic import ValidationError
    from sqlalchemy import exc as sa

    try:
        CaseDeleted.model_validate({"case_id": 1})
    except ValidationError as e:
        validation = e
    assert classify(validation) == "permanent"
    assert classify(PermanentError("x")) == "permanent"
    assert classify(ConnectionRefusedError(111, "refused")) == "transient"
    assert classify(ConnectionResetError()) == "transient"
    assert classify(TimeoutError()) == "transient"
    assert classify(sa.OperationalError("SELECT 1", {}, ConnectionRefusedError())) == "transient"
    assert classify(sa.IntegrityError("INSERT", {}, Exception("duplicate key"))) == "deterministic"
    assert classify(sa.DataError("SELECT 1/0", {}, Exception("division by zero"))) == "deterministic"
    assert classify(RuntimeError("unknown")) == "transient"  # loud stall, nothing lost

    class PgError(Exception):  # how asyncpg's errors look through SQLAlchemy's generic wrapper
        def __init__(self, sqlstate: str) -> None:
            super().__init__(sqlstate)
            self.sqlstate = sqlstate

    def wrapped(sqlstate: str) -> sa.DBAPIError:
        try:
            try:
                raise PgError(sqlstate)
            except PgError as orig:
                raise sa.DBAPIError("SELECT", {}, orig) from orig
        except sa.DBAPIError as e:
            return e

    assert classify(wrapped("22012")) == "deterministic"  # division by zero
    assert classify(wrapped("23505")) == "deterministic"  # unique violation
    assert classify(wrapped("57P03")) == "transient"  # cannot connect now (starting up)
    assert classify(wrapped("40001")) == "transient"  # serialization failure: try again
    assert classify(wrapped("53300")) == "transient"  # too many connections


async def test_failed_batch_rewinds_every_partition_it_touched(stack: Any) -> None:
    topic = f"rewind-{uuid.uuid4().hex[:8]}"
    bootstrap = f"127.0.0.1:{stack.ports.kafka}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(40):
            await producer.send_and_wait(topic, f"m{i}".encode(), partition=i % 4)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{uuid.uuid4().hex[:8]}",
                                auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=4000)
    await consumer.start()
    try:
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while len({r.partition for r in records}) < 4 and time.monotonic() < deadline:
            for recs in (await consumer.getmany(timeout_ms=1000, max_records=40)).values():
                records.extend(recs)
        touched = {r.partition for r in records}
        assert len(touched) >= 2, "the batch should span several partitions"
        sought = rewind(consumer, records)
        for p in touched:
            first = min(r.offset for r in records if r.partition == p)
            assert sought[(topic, p)] == first
            assert await consumer.position(TopicPartition(topic, p)) == first
        again: list[Any] = []  # what comes next is the rewound batch again, on every partition
        deadline = time.monotonic() + 60
        while len(again) < len(records) and time.monotonic() < deadline:
            for recs in (await consumer.getmany(timeout_ms=1000, max_records=100)).values():
                again.extend(recs)
        assert {(r.partition, r.offset) for r in records} <= {(r.partition, r.offset) for r in again}
    finally:
        await consumer.stop()


async def test_oversized_outbox_row_is_parked_and_rows_behind_it_flow(stack: Any) -> None:
    pair = await Pair(stack, "park").start()
    try:
        big_case = f"c-{uuid.uuid4().hex}"
        big = make_envelope(CaseDeleted(case_id=big_case, owner_id="u", deleted_by="9" * (9 * 1024 * 1024)),
                            producer="producer", key=big_case)  # above the producer's 8 MB request limit
        async with pair.pdb.transaction() as s:
            await enqueue(s, tables, big)
        pair.relay.nudge()
        small = [f"c-{uuid.uuid4().hex}" for _ in range(3)]
        for i, c in enumerate(small):
            await pair.write(c, i)

        async def arrived() -> bool:
            return len(await pair.effects_of(set(small))) == 3

        await wait_until(arrived, 60, "the rows behind the oversized one")
        t = tables.outbox
        async with pair.pdb.sessions() as s:
            row = (await s.execute(select(t.c.attempts, t.c.headers).where(t.c.event_id == big.event_id))).one()
            remaining = (await s.execute(select(func.count()).select_from(t))).scalar_one()
        assert row.attempts == 1
        assert row.headers[PARKED] == "too_large"
        assert "MessageSizeTooLarge" in row.headers[LAST_ERROR]
        assert remaining == 1
        assert await pair.relay.parked() == 1
        assert pair.relay._metrics.outbox_parked_total.labels("producer", "case.deleted", "too_large")._value.get() == 1

        import json
        import subprocess
        import sys

        url = pair.pdb.engine.url.render_as_string(hide_password=False)
        cmd = [sys.executable, "-m", "casebook_platform.cli", "outbox", "--database-url", url]
        listed = json.loads((await asyncio.to_thread(subprocess.run, [*cmd, "parked"], capture_output=True,
                                                     text=True, check=True)).stdout)
        assert [(x["event_id"], x["reason"]) for x in listed] == [(big.event_id, "too_large")]
        assert listed[0]["bytes"] > 9 * 1024 * 1024
        await asyncio.to_thread(subprocess.run, [*cmd, "retry", "--all"], check=True, capture_output=True)
        pair.relay.nudge()

        async def parked_again() -> bool:
            async with pair.pdb.sessions() as s:
                r = (await s.execute(select(t.c.attempts, t.c.headers).where(t.c.event_id == big.event_id))).one()
            return r.attempts == 2 and PARKED in r.headers

        await wait_until(parked_again, 30, "the retried row to be tried and parked again")
    finally:
        await pair.stop()


def _casebook(stack: Any, *args: str) -> str:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "casebook_platform.cli", "dlq", "--bootstrap",
                        f"127.0.0.1:{stack.ports.kafka}", "--idle", "1.5", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


async def test_casebook_dlq_lists_shows_and_replays_idempotently(stack: Any) -> None:
    import json

    pair = await Pair(stack, "replay").start()
    case = f"c-{uuid.uuid4().hex}"
    broken = {"on": True}

    async def handler(d: Delivery) -> None:
        if d.event.case_id == case and broken["on"]:
            raise PermanentError("refused until the handler is fixed")
        if not d.event.deleted_by.isdigit():
            return  # another test's event on the shared topic
        await d.session.execute(effects.insert().values(event_id=d.envelope.event_id, case_id=d.event.case_id,
                                                        n=int(d.event.deleted_by)))

    pair.consumer.handlers["case.deleted"] = handler
    try:
        env = make_envelope(CaseDeleted(case_id=case, owner_id="u", deleted_by="4"), producer="t", key=case)
        assert await pair.consumer.process("case.deleted", encode(env), partition=0, offset=1,
                                           key=case.encode()) == "dead_lettered"
        letters = json.loads(await asyncio.to_thread(_casebook, stack, "list", "--topic", "case.deleted", "--json"))
        mine = [x for x in letters if x["event_id"] == env.event_id]
        assert len(mine) == 1 and mine[0]["original_topic"] == "case.deleted"
        assert "refused until the handler is fixed" in mine[0]["error"]
        shown = json.loads(await asyncio.to_thread(_casebook, stack, "show", mine[0]["id"]))
        assert shown["body"]["event_id"] == env.event_id and shown["key"] == case

        broken["on"] = False  # the fix is deployed: replay, twice
        for _ in range(2):
            out = await asyncio.to_thread(_casebook, stack, "replay", mine[0]["id"])
            assert f"replayed {mine[0]['id']}" in out

        async def applied() -> list[Any]:
            return await pair.effects_of({case})

        await wait_until(applied, 60, "the replayed event")
        await asyncio.sleep(3)  # the second replay has time to arrive
        assert [r.n for r in await pair.effects_of({case})] == [4]  # once, not twice
        assert pair.metrics.events_duplicate.labels("consumer", "case.deleted")._value.get() >= 1
    finally:
        await pair.stop()
