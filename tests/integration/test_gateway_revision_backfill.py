"""Upgrading a gateway database holding cases submitted and approved before revisions were kept."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from harness import fresh_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import casebook_gateway
from casebook_platform.migrations import alembic_config

pytestmark = pytest.mark.integration
MIGRATIONS = Path(casebook_gateway.__file__).parent / "migrations"


async def _run(url: str, *statements: str) -> list[Any]:
    engine = create_async_engine(url)
    out: list[Any] = []
    async with engine.begin() as conn:
        for s in statements:
            res = await conn.execute(text(s))
            out.append(res.mappings().all() if res.returns_rows else None)
    await engine.dispose()
    return out


def test_cases_from_before_revisions_get_theirs(stack: Any) -> None:
    from alembic import command

    url = fresh_database(stack, "gw_backfill")
    cfg = alembic_config(MIGRATIONS, url)
    asyncio.run(asyncio.to_thread(command.upgrade, cfg, "e53a64ffe818"))
    snapshot = json.dumps({"title": "Published", "discussion": "Old", "image_ids": ["i_1"]})
    asyncio.run(_run(
        url,
        "INSERT INTO cases (id, owner_id, owner_name, title, visibility, status, revision) VALUES "
        "('c_wait', 'alice', 'Alice', 'Waiting', 'public', 'submitted', 3)",
        "INSERT INTO studies (id, case_id, position, modality, findings) VALUES ('s_1', 'c_wait', 1, 'CT', 'Nidus.')",
        "INSERT INTO images (id, case_id, study_id, status, incoming_key) VALUES "
        "('i_1', 'c_wait', 's_1', 'ready', 'k1'), ('i_2', 'c_wait', 's_1', 'receiving', 'k2')",
        "INSERT INTO cases (id, owner_id, owner_name, title, visibility, status, revision, listed_public, "
        f"public_snapshot, approved_at) VALUES ('c_pub', 'bob', 'Bob', 'Edited', 'public', 'approved', 5, true, "
        f"'{snapshot}', now())",
        "INSERT INTO studies (id, case_id, position, modality, findings) VALUES ('s_2', 'c_pub', 1, 'MR', 'Oedema.')",
        "INSERT INTO case_history (case_id, actor, action, revision) VALUES ('c_pub', 'ed', 'approved', 4)",
    ))
    asyncio.run(asyncio.to_thread(command.upgrade, cfg, "head"))
    (rows,) = asyncio.run(_run(url, "SELECT case_id, n, status, content FROM case_revisions ORDER BY case_id"))
    by_case = {r["case_id"]: r for r in rows}
    wait = by_case["c_wait"]
    assert (wait["n"], wait["status"]) == (3, "submitted")
    assert wait["content"]["title"] == "Waiting" and wait["content"]["image_ids"] == ["i_1"]
    assert wait["content"]["studies"] == [{"id": "s_1", "position": 1, "modality": "CT", "findings": "Nidus."}]
    pub = by_case["c_pub"]
    assert (pub["n"], pub["status"]) == (4, "approved")
    assert pub["content"]["title"] == "Published" and [s["id"] for s in pub["content"]["studies"]] == ["s_2"]
