"""The gateway's in-memory read model agrees with the PostgreSQL one, event for event.

The same cases, revisions, images and export requests are seeded in both; one scenario (decisions on
current, older, decided and withdrawn revisions, redeliveries, an image of a deleted case, featuring,
exports) runs through the real handlers over each; every row the handlers touch must end up the same.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gateway_events import anonymised, approval, rejection
from harness import fresh_database
from service_tier import AGAIN, Scenario, play
from sqlalchemy import select

import casebook_gateway
from casebook_events import (
    CaseFeatured,
    CaseOfTheMonthPicked,
    CaseQuarantined,
    ExportFailed,
    ExportReady,
)
from casebook_gateway.adapters import db as gw
from casebook_gateway.adapters.memory import MemoryImages, MemoryReadModel
from casebook_gateway.adapters.readmodel import SqlReadModel
from casebook_gateway.handlers import handlers
from casebook_gateway.metrics import domain_metrics
from casebook_platform.consumer import EventConsumer, Handler
from casebook_platform.db import Database
from casebook_platform.memory import MemoryConsumer
from casebook_platform.metrics import Metrics
from casebook_platform.migrations import upgrade
from casebook_platform.settings import CommonSettings

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
V1 = {"title": "r1", "image_ids": ["i1"]}
V2 = {"title": "r2", "image_ids": ["i1", "i2"]}

# (case id, status, visibility, current revision, listed_public, {revision: status})
CASES = [
    ("p1", "in_review", "public", 1, False, {1: "submitted"}),
    ("p2", "in_review", "public", 3, True, {2: "superseded", 3: "submitted"}),
    ("p3", "in_review", "public", 1, False, {1: "submitted"}),
    ("p4", "draft", "draft", 1, False, {1: "withdrawn"}),
    ("p5", "in_review", "public", 2, False, {1: "superseded", 2: "submitted"}),
]
IMAGES = [("i1", "p1"), ("i2", "p1")]
EXPORTS = ["x1", "x2"]

SCENARIO: Scenario = [
    anonymised("i1", case_id="p1"), AGAIN,
    CaseQuarantined(case_id="p1", image_id="i2", study_id="s", reasons=["burned_in_text"]),
    anonymised("i9", case_id="gone"),
    approval(1, case_id="p1"), AGAIN, rejection(1, case_id="p1"), approval(1, case_id="p1"),
    approval(2, case_id="p2"), rejection(3, case_id="p2"),
    rejection(1, case_id="p3", editor_id=None), approval(1, case_id="p3"),
    approval(1, case_id="p4"), approval(1, case_id="gone"), rejection(1, case_id="gone"),
    rejection(1, case_id="p5"), approval(2, case_id="p5"),
    CaseFeatured(case_id="p1", editor_id="ed", featured_at=T), CaseFeatured(case_id="gone", editor_id="ed",
                                                                             featured_at=T),
    CaseOfTheMonthPicked(case_id="p1", month="2026-11", picked_by="ed"),
    ExportReady(export_id="x1", object_key="exports/x1.zip", size=1, sha256="1" * 64, expires_at=T + timedelta(days=7)),
    ExportFailed(export_id="x2", reason="too_large"), ExportFailed(export_id="x9", reason="too_large"),
]

CASE_FIELDS = ("status", "visibility", "revision", "listed_public", "public_snapshot", "approved_at",
               "moderation_reasons")
REVISION_FIELDS = ("status", "decided_by", "reasons")
IMAGE_FIELDS = ("status", "reasons", "object_key", "media_type", "size", "sha256", "modality", "series_uid",
                "series_number", "series_description", "instance_number", "rows", "columns", "frames")
HISTORY_FIELDS = ("case_id", "actor", "action", "from_status", "to_status", "reasons", "revision")
EXPORT_FIELDS = ("status", "object_key", "expires_at", "error")


def seed_memory(rm: MemoryReadModel) -> None:
    for case_id, status, visibility, revision, listed, revs in CASES:
        rm.add_case(case_id, status=status, visibility=visibility, revision=revision, listed_public=listed)
        for n, rev_status in revs.items():
            rm.add_revision(case_id, n, status=rev_status, content=V1 if n == 1 else V2)
    for image_id, case_id in IMAGES:
        rm.add_image(image_id, case_id)
    for export_id in EXPORTS:
        rm.add_export(export_id)


async def seed_postgres(db: Database) -> None:
    async with db.sessions() as session, session.begin():
        for case_id, status, visibility, revision, listed, revs in CASES:
            await session.execute(gw.cases.insert().values(
                id=case_id, owner_id="alice", owner_name="Alice", title="", status=status, visibility=visibility,
                revision=revision, listed_public=listed))
            await session.execute(gw.studies.insert().values(id=f"s_{case_id}", case_id=case_id, position=1,
                                                             modality="CT"))
            for n, rev_status in revs.items():
                await session.execute(gw.revisions.insert().values(
                    case_id=case_id, n=n, status=rev_status, content=V1 if n == 1 else V2, submitted_by="alice"))
        for image_id, case_id in IMAGES:
            await session.execute(gw.images.insert().values(id=image_id, case_id=case_id, study_id=f"s_{case_id}",
                                                            status="processing", incoming_key=f"in/{image_id}"))
        for export_id in EXPORTS:
            await session.execute(gw.exports.insert().values(id=export_id, requested_by="alice", kind="originals",
                                                             status="queued"))


def pick(row: Any, fields: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(row[f] for f in fields)


async def test_the_gateway_read_model_in_memory_and_on_postgres_agree(stack: Any) -> None:
    settings = CommonSettings(service_name="gateway", consumer_retry_backoff_s=0.001, consumer_max_attempts=2)
    memory, objects_in_memory, objects_on_postgres = MemoryReadModel(), MemoryImages(), MemoryImages()
    seed_memory(memory)
    built: dict[str, Handler] = handlers(store=lambda d: memory, objects=objects_in_memory,
                                         metrics=domain_metrics(Metrics("gateway")))
    await play(lambda broker: MemoryConsumer(settings=settings, broker=broker, handlers=built, stores=[memory]),
               SCENARIO)

    url = await asyncio.to_thread(fresh_database, stack, "parity_gateway")
    await upgrade(Path(casebook_gateway.__file__).parent / "migrations", url)
    db = Database(url)
    try:
        await seed_postgres(db)
        on_postgres = handlers(store=lambda d: SqlReadModel(d.session), objects=objects_on_postgres,
                               metrics=domain_metrics(Metrics("gateway")))
        await play(lambda broker: EventConsumer(settings=settings, broker=broker, db=db, tables=gw.tables,
                                                metrics=Metrics("gateway"), relay=None, handlers=on_postgres),
                   SCENARIO)
        async with db.sessions() as session:
            cases = {r["id"]: r for r in (await session.execute(select(gw.cases))).mappings()}
            revisions = {(r["case_id"], r["n"]): r for r in (await session.execute(select(gw.revisions))).mappings()}
            images = {r["id"]: r for r in (await session.execute(select(gw.images))).mappings()}
            history = list((await session.execute(select(gw.history).order_by(gw.history.c.id))).mappings())
            exports = {r["id"]: r for r in (await session.execute(select(gw.exports))).mappings()}
    finally:
        await db.dispose()

    assert {k: pick(r, CASE_FIELDS) for k, r in cases.items()} == {
        k: pick(r, CASE_FIELDS) for k, r in memory.cases.items()}
    assert {k: pick(r, REVISION_FIELDS) for k, r in revisions.items()} == {
        k: pick(r, REVISION_FIELDS) for k, r in memory.revisions.items()}
    approvals = {k: r["decided_at"] for k, r in revisions.items() if r["status"] == "approved"}
    assert approvals == {k: r["decided_at"] for k, r in memory.revisions.items() if r["status"] == "approved"}
    assert {k: pick(r, IMAGE_FIELDS) for k, r in images.items()} == {
        k: pick(r, IMAGE_FIELDS) for k, r in memory.images.items()}
    assert [pick(r, HISTORY_FIELDS) for r in history] == [pick(r, HISTORY_FIELDS) for r in memory.history]
    assert {k: pick(r, EXPORT_FIELDS) for k, r in exports.items()} == {
        k: pick(r, EXPORT_FIELDS) for k, r in memory.exports.items()}
    assert objects_in_memory.deleted == objects_on_postgres.deleted == ["gone/i9", "gone/i9.deid-report.json"]
    # What the scenario means, so that two adapters agreeing on nothing happening would not pass.
    assert [pick(memory.cases[c], ("status", "visibility", "listed_public")) for c in ("p1", "p2", "p3", "p4", "p5")
            ] == [("approved", "public", True), ("approved", "public", True), ("rejected", "draft", False),
                  ("draft", "draft", False), ("approved", "public", True)]
    assert [(h["case_id"], h["action"]) for h in memory.history] == [
        ("p1", "approved"), ("p2", "approved"), ("p2", "rejected"), ("p3", "rejected"), ("p5", "approved"),
        ("p1", "featured"), ("p1", "case_of_the_month:2026-11")]
    assert memory.images["i1"]["status"] == "ready" and memory.images["i2"]["reasons"] == ["burned_in_text"]
