"""The in-memory adapters of the service tier agree with the PostgreSQL ones, event for event.

The same scenario (duplicates, redeliveries, out-of-order revisions, deletions) runs twice on the
in-memory broker: once through `MemoryConsumer` and the in-memory adapters, once through the real
`EventConsumer` with its transaction, processed-event record and outbox on PostgreSQL. The resulting
state and the emitted events must be the same, so the fast tier tests what production runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import fresh_database
from prometheus_client import CollectorRegistry, Counter
from service_tier import AGAIN, Scenario, play
from sqlalchemy import select

import casebook_achievements
import casebook_featuring
import casebook_moderation
from casebook_achievements.adapters import db as achievements_db
from casebook_achievements.adapters.collector import SqlCollector
from casebook_achievements.adapters.memory import MemoryCollector
from casebook_achievements.handlers import handlers as achievements_handlers
from casebook_events import (
    CaseAnonymised,
    CaseApproved,
    CaseDeleted,
    CaseQuarantined,
    CaseSnapshot,
    CaseSubmitted,
    CaseUpdated,
    Envelope,
    decode,
)
from casebook_featuring.adapters import db as featuring_db
from casebook_featuring.adapters.catalog import SqlCatalog
from casebook_featuring.adapters.memory import MemoryCatalog
from casebook_featuring.handlers import handlers as featuring_handlers
from casebook_moderation.adapters import db as moderation_db
from casebook_moderation.adapters import queue as sql_queue
from casebook_moderation.adapters.memory import MemoryQueue
from casebook_moderation.handlers import handlers as moderation_handlers
from casebook_moderation.metrics import domain_metrics
from casebook_platform.consumer import EventConsumer, Handler
from casebook_platform.db import Database, PlatformTables
from casebook_platform.memory import MemoryConsumer, MemoryStore
from casebook_platform.metrics import Metrics
from casebook_platform.migrations import upgrade
from casebook_platform.settings import CommonSettings

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)


def approved(case_id: str, revision: int) -> CaseApproved:
    return CaseApproved(case_id=case_id, owner_id="alice", editor_id="ed", revision=revision,
                        title=f"{case_id} r{revision}", approved_at=T)


def withdrawn(case_id: str, revision: int) -> CaseUpdated:
    return CaseUpdated(case_id=case_id, owner_id="alice", revision=revision, status="unlisted",
                       visibility="unlisted", listed_public=False)


def deleted(case_id: str) -> CaseDeleted:
    return CaseDeleted(case_id=case_id, owner_id="alice", deleted_by="alice")


SCENARIO: Scenario = [
    approved("c1", 1), AGAIN, approved("c2", 1), approved("c3", 2), approved("c3", 2),
    withdrawn("c3", 3), approved("c3", 2), approved("c3", 4),
    deleted("c4"), approved("c4", 1),
    approved("c5", 1), withdrawn("c5", 1), deleted("c5"), approved("c5", 7), AGAIN,
    approved("c6", 1), deleted("c6"), deleted("c6"), approved("c7", 1), approved("c8", 3), withdrawn("c8", 2),
]


async def _in_memory(service: str, handlers: dict[str, Handler], store: MemoryStore,
                     scenario: Scenario = SCENARIO) -> list[Envelope]:
    consumer = await play(lambda broker: MemoryConsumer(settings=CommonSettings(service_name=service), broker=broker,
                                                        handlers=handlers, stores=[store]), scenario)
    return consumer.published


async def _on_postgres(stack: Any, service: str, migrations: Path, tables: PlatformTables,
                       build: Callable[[], dict[str, Handler]], scenario: Scenario = SCENARIO
                       ) -> tuple[Database, list[Envelope]]:
    url = await asyncio.to_thread(fresh_database, stack, f"parity_{service}")
    await upgrade(migrations, url)
    db = Database(url)
    await play(lambda broker: EventConsumer(settings=CommonSettings(service_name=service), broker=broker, db=db,
                                            tables=tables, metrics=Metrics(service), relay=None, handlers=build()),
               scenario)
    async with db.sessions() as session:
        rows = (await session.execute(select(tables.outbox.c.value).order_by(tables.outbox.c.id))).all()
    return db, [decode(r.value) for r in rows]


def _payloads(envs: list[Envelope]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.payload) for e in envs]


def _counter() -> Counter:
    return Counter("awarded", "levels awarded", registry=CollectorRegistry())


async def test_achievements_in_memory_and_on_postgres_agree(stack: Any) -> None:
    memory = MemoryCollector()
    emitted_in_memory = await _in_memory(
        "achievements", achievements_handlers(collector=lambda d: memory, awarded=_counter()), memory)
    db, emitted_on_postgres = await _on_postgres(
        stack, "achievements", Path(casebook_achievements.__file__).parent / "migrations", achievements_db.tables,
        lambda: achievements_handlers(collector=lambda d: SqlCollector(d.session), awarded=_counter()))
    try:
        assert _payloads(emitted_in_memory) == _payloads(emitted_on_postgres)
        assert [e.payload["level"] for e in emitted_in_memory] == [1, 2]  # 5 cases: thresholds 1 and 3
        async with db.sessions() as session:
            sql = SqlCollector(session)
            for case_id in [f"c{n}" for n in range(1, 9)]:
                assert await memory.case(case_id) == await sql.case(case_id), case_id
            assert await memory.count("alice") == await sql.count("alice") == 5
            assert await memory.awarded_level("alice") == await sql.awarded_level("alice") == 2
    finally:
        await db.dispose()


async def test_featuring_in_memory_and_on_postgres_agree(stack: Any) -> None:
    memory = MemoryCatalog()
    emitted = await _in_memory("featuring", featuring_handlers(catalog=lambda d: memory), memory)
    db, emitted_on_postgres = await _on_postgres(
        stack, "featuring", Path(casebook_featuring.__file__).parent / "migrations", featuring_db.tables,
        lambda: featuring_handlers(catalog=lambda d: SqlCatalog(d.session)))
    try:
        assert emitted == emitted_on_postgres == []
        async with db.sessions() as session:
            rows = {r.case_id: r for r in (await session.execute(select(featuring_db.cases))).all()}
        assert set(rows) == set(memory.cases)
        for case_id, r in rows.items():
            m = memory.cases[case_id]
            assert (r.listed, r.deleted, r.revision, r.title, r.approved_at) == (
                m["listed"], m["deleted"], m["revision"], m["title"], m["approved_at"]), case_id
        assert memory.listed() == ["c1", "c2", "c3", "c7", "c8"]
    finally:
        await db.dispose()


GOOD = CaseSnapshot(title="Osteoid osteoma", presentation="Night pain.", patient_age=15, patient_sex="male",
                    systems=["musculoskeletal"], diagnostic_certainty="certain", discussion="Classic nidus.")


def submitted(case_id: str, revision: int, images: list[str], **case: Any) -> CaseSubmitted:
    return CaseSubmitted(case_id=case_id, owner_id="alice", revision=revision,
                         case=GOOD.model_copy(update=case), image_ids=images)


def ready(case_id: str, image_id: str, flags: tuple[str, ...] = ()) -> CaseAnonymised:
    return CaseAnonymised(case_id=case_id, image_id=image_id, study_id="s", object_key=f"{case_id}/{image_id}",
                          media_type="application/dicom", size=1, sha256="0" * 64, modality="CT",
                          series_uid="2.25.1", rows=512, columns=512, flags=list(flags),
                          identifier_digests=["ab" * 32])


MODERATION: Scenario = [
    ready("m1", "i1"), submitted("m1", 1, ["i1", "i2"]), ready("m1", "i2"), AGAIN,
    submitted("m2", 1, ["i3"], diagnostic_certainty="possible"), AGAIN, ready("m2", "i3"), AGAIN,
    CaseQuarantined(case_id="m3", image_id="i4", study_id="s", reasons=["burned_in_text"]), ready("m3", "i4"),
    submitted("m3", 1, ["i4"]),
    withdrawn("m4", 3), submitted("m4", 2, ["i5"]), ready("m4", "i5"), submitted("m4", 4, ["i5"]),
    ready("m6", "i7", flags=("burned_in_text_redacted",)), submitted("m6", 1, ["i7"]),
    submitted("m5", 1, ["i6"]), deleted("m5"), ready("m5", "i6"), submitted("m5", 2, ["i6"]),
]


async def test_moderation_in_memory_and_on_postgres_agree(stack: Any) -> None:
    memory = MemoryQueue()
    emitted = await _in_memory(
        "moderation", moderation_handlers(queue=memory, metrics=domain_metrics(Metrics("moderation"))), memory,
        MODERATION)
    db, emitted_on_postgres = await _on_postgres(
        stack, "moderation", Path(casebook_moderation.__file__).parent / "migrations", moderation_db.tables,
        lambda: moderation_handlers(queue=sql_queue, metrics=domain_metrics(Metrics("moderation"))), MODERATION)
    try:
        assert _payloads(emitted) == _payloads(emitted_on_postgres)
        assert [(e.type, e.payload["case_id"]) for e in emitted] == [
            ("case.rejected", "m2"), ("case.rejected", "m3"), ("case.rejected", "m6")]
        fields = ("owner_id", "owner_name", "title", "revision", "withdrawn_revision", "state", "snapshot",
                  "image_ids", "checks", "advice", "diff")
        async with db.sessions() as session:
            rows = {r.case_id: r for r in (await session.execute(select(moderation_db.items))).all()}
            assert set(rows) == set(memory.items)
            for case_id, r in rows.items():
                m = memory.items[case_id]
                assert {f: getattr(r, f) for f in fields} == {f: getattr(m, f) for f in fields}, case_id
                assert await sql_queue.case_images(session, case_id) == await memory.case_images(None, case_id)
            decided = (await session.execute(select(moderation_db.decisions).order_by(moderation_db.decisions.c.id)
                                             )).all()
        assert [(d.case_id, d.revision, d.outcome, d.automatic, d.reasons) for d in decided] == [
            (d["case_id"], d["revision"], d["outcome"], d["automatic"], d["reasons"]) for d in memory.decisions]
    finally:
        await db.dispose()
