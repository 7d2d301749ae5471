"""Export's in-memory jobs (the service tier's fake) agree with the PostgreSQL adapter, operation for operation.

One scenario of requests (both versions, a playlist, duplicates, a deletion before and after its request) runs
through the real handlers twice: on `MemoryConsumer` with `MemoryJobs`, and on the real `EventConsumer` with
`adapters.jobs` on PostgreSQL. Then the workers' operations (claim, heartbeat, ready, failed, expiry, status)
run on both. Job rows, emitted events and answers must be the same, so the fast tier tests what production runs.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import fresh_database
from service_tier import AGAIN, Scenario, play
from sqlalchemy import select

import casebook_export
from casebook_events import (
    CaseDeleted,
    CaseSnapshot,
    ExportCase,
    ExportCaseRef,
    ExportManifest,
    ExportRequested,
    ExportRequestedV2,
    decode,
)
from casebook_export.adapters import db as export_db
from casebook_export.adapters import jobs as sql_jobs
from casebook_export.adapters.memory import MemoryJobs, MemoryObjects
from casebook_export.handlers import handlers
from casebook_platform.consumer import EventConsumer
from casebook_platform.db import Database
from casebook_platform.memory import MemoryConsumer
from casebook_platform.metrics import Metrics
from casebook_platform.migrations import upgrade
from casebook_platform.settings import CommonSettings

pytestmark = pytest.mark.integration

FIELDS = ("id", "requested_by", "kind", "title", "fingerprint", "request", "status", "progress", "attempts",
          "object_key", "size", "sha256", "error")


def _case(case_id: str) -> ExportCase:
    return ExportCase(case_id=case_id, revision=2, case=CaseSnapshot(title=f"{case_id} title"), author_name="A",
                      attribution=f"Case courtesy of A, Casebook, case {case_id}", licence="CC BY-NC-SA 4.0")


def v2(export_id: str, *case_ids: str, kind: str = "originals") -> ExportRequestedV2:
    claim = MemoryObjects().put_manifest(ExportManifest(export_id=export_id, kind=kind, title="t",  # type: ignore[arg-type]
                                                        cases=[_case(c) for c in case_ids]))
    return ExportRequestedV2(export_id=export_id, kind=kind, requested_by="alice", title=f"{export_id} title",
                             case_id=case_ids[0] if len(case_ids) == 1 else None, revision=2,
                             playlist_id="p_1" if len(case_ids) > 1 else None,
                             cases=[ExportCaseRef(case_id=c, revision=2) for c in case_ids], fingerprint=export_id * 8,
                             manifest_key=claim.key, manifest_sha256=claim.sha256, manifest_size=claim.size)


def v1(export_id: str, case_id: str) -> ExportRequested:
    return ExportRequested(export_id=export_id, kind="presentation", requested_by="bob", title="old gateway",
                           fingerprint=export_id * 8, cases=[_case(case_id)])


def deleted(case_id: str) -> CaseDeleted:
    return CaseDeleted(case_id=case_id, owner_id="alice", deleted_by="alice")


SCENARIO: Scenario = [
    v2("x1", "c1"), AGAIN, v2("x1", "c1"), v1("x2", "c2"), v2("x3", "c2", "c3", kind="presentation"),
    deleted("c4"), v2("x4", "c4"), v2("x5", "c5"), deleted("c5"), AGAIN, v2("x6", "c6"), v1("x7", "c7"),
]


async def _workers(jobs: Any, session: Any, now: datetime) -> list[Any]:
    """The workers' operations in one order; every answer, for comparison."""
    out: list[Any] = []
    first = await jobs.claim_next(session, now=now, lease_s=60)
    second = await jobs.claim_next(session, now=now, lease_s=60)
    out += [first and first["id"], second and second["id"]]
    await jobs.heartbeat(session, first["id"], progress=0.5, lease_until=now + timedelta(seconds=90))
    out.append(await jobs.mark_ready(session, first["id"], object_key=f"{first['id']}/a.zip", size=7,
                                     sha256="7" * 64, expires_at=now + timedelta(hours=1)))
    out.append(await jobs.mark_ready(session, first["id"], object_key="again", size=1, sha256="1" * 64,
                                     expires_at=now))  # no longer running: refused
    out.append(await jobs.mark_failed(session, second["id"], final=False, error="ConnectionResetError: gone"))
    again = await jobs.claim_next(session, now=now, lease_s=60)
    out.append(again and (again["id"], again["attempts"]))
    out.append(await jobs.mark_failed(session, again["id"], final=True, error="x" * 2000))
    out.append(await jobs.archive_in_use(session, f"{first['id']}/a.zip"))
    out.append(await jobs.expire_due(session, now=now + timedelta(hours=2)))
    out.append(await jobs.archive_in_use(session, f"{first['id']}/a.zip"))
    out.append(await jobs.statuses(session, ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "nope"]))
    out.append(await jobs.find_reusable(session, fingerprint="x1" * 8, kind="originals", fresh_until=now))
    return out


def _rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: {f: r.get(f) for f in FIELDS} for r in rows}


async def test_export_jobs_in_memory_and_on_postgres_agree(stack: Any) -> None:
    now = datetime.now(UTC)
    memory = MemoryJobs()
    consumer = await play(lambda broker: MemoryConsumer(
        settings=CommonSettings(service_name="export"), broker=broker,
        handlers=handlers(jobs=memory, objects=MemoryObjects()), stores=[memory]), SCENARIO)
    memory_rows = _rows(list(memory.jobs.values()))
    memory_answers = await _workers(memory, None, now)
    memory_after = _rows(list(memory.jobs.values()))

    url = await asyncio.to_thread(fresh_database, stack, "parity_export")
    await upgrade(Path(casebook_export.__file__).parent / "migrations", url)
    db = Database(url)
    try:
        await play(lambda broker: EventConsumer(
            settings=CommonSettings(service_name="export"), broker=broker, db=db, tables=export_db.tables,
            metrics=Metrics("export"), relay=None, handlers=handlers(jobs=sql_jobs, objects=MemoryObjects())),
            SCENARIO)
        async with db.sessions() as s:
            sql_rows = _rows([dict(r) for r in (await s.execute(select(export_db.jobs))).mappings()])
            emitted = [decode(r.value) for r in (await s.execute(select(export_db.tables.outbox.c.value))).all()]
        # Claims go oldest first: on PostgreSQL by created_at, in memory by arrival; the same order here.
        async with db.transaction() as s:
            sql_answers = await _workers(sql_jobs, s, now)
        async with db.sessions() as s:
            sql_after = _rows([dict(r) for r in (await s.execute(select(export_db.jobs))).mappings()])
    finally:
        await db.dispose()

    assert sql_rows == memory_rows
    assert {k: v["status"] for k, v in memory_rows.items()} == {
        "x1": "queued", "x2": "queued", "x3": "queued", "x4": "deleted", "x5": "deleted", "x6": "queued",
        "x7": "queued"}
    assert emitted == consumer.published == []
    # The answers hold rows (reusable) with timestamps the database chose; compare what both decide.
    assert sql_answers[:-1] == memory_answers[:-1]
    assert (sql_answers[-1] or {}).get("id") == (memory_answers[-1] or {}).get("id")
    assert sql_after == memory_after
