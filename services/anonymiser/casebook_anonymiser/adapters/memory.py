"""The anonymiser's ports in this process: objects and runs in memory, the real de-identification core inline.

For the service-test tier: no object store, no database, no worker processes, and still the same
de-identification of real files that the workers run.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

from casebook_anonymiser.deid import CaseKey
from casebook_anonymiser.ports import Run, SourceMissing
from casebook_anonymiser.worker import Outcome, deidentify_to_file
from casebook_platform.memory import MemoryStore


class MemoryObjects:
    """The two buckets as dicts of bytes by key (an object store is no transaction: nothing is rolled back)."""

    def __init__(self) -> None:
        self.incoming: dict[str, bytes] = {}
        self.images: dict[str, bytes] = {}
        self.media_types: dict[str, str] = {}

    async def get_raw(self, key: str, path: Path) -> int:
        data = self.incoming.get(key)
        if data is None:
            raise SourceMissing(key)
        path.write_bytes(data)
        return len(data)

    async def put_report(self, key: str, data: bytes) -> None:
        self.images[key] = data
        self.media_types[key] = "application/json"

    async def put_output(self, key: str, path: Path, media_type: str) -> None:
        self.images[key] = path.read_bytes()
        self.media_types[key] = media_type

    async def delete_raw(self, key: str) -> None:
        self.incoming.pop(key, None)


class MemoryRuns(MemoryStore):
    """Run rows by image id (dicts with the table's columns), rolled back with a failed delivery."""

    def __init__(self) -> None:
        super().__init__()
        rows: dict[str, dict[str, Any]] = {}
        self.state = {"runs": rows}

    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.state["runs"]
        return found

    async def record(self, session: Any, run: Run) -> None:
        self.runs.setdefault(run.image_id, {**asdict(run), "incoming_deleted": False})

    async def mark_raw_deleted(self, image_id: str) -> None:
        if image_id in self.runs:
            self.runs[image_id]["incoming_deleted"] = True

    async def raw_left(self, limit: int = 500) -> list[tuple[str, str]]:
        left = [(i, r["incoming_key"]) for i, r in self.runs.items() if not r["incoming_deleted"]]
        return left[:limit]


class InProcessDeidentifier:
    """`worker.deidentify_to_file` on a thread of this process: the workers' core without their pool.

    No time limit and no worker to lose, so it never raises `TaskTimeout` or `BrokenProcessPool`.
    """

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, src: Path, dst: Path, key: CaseKey, ocr: bool) -> Outcome:
        self.calls += 1
        return await asyncio.to_thread(deidentify_to_file, str(src), str(dst), key, ocr)
