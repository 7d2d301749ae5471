"""The ports of the anonymiser: the objects its handler reads and writes, the runs record, the de-identifier.

`adapters.objects.StorageObjects` (minio), `adapters.runs.SqlRuns` (PostgreSQL) and `worker.DeidPool`
(worker processes) implement them; `adapters.memory` holds the in-memory ones of the service-test tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from casebook_anonymiser.deid import CaseKey
from casebook_anonymiser.worker import Outcome


class SourceMissing(LookupError):
    """The raw upload is not in the incoming bucket (its case was deleted before it was handled)."""


class Objects(Protocol):
    """Raw uploads in the incoming bucket; de-identified objects and their reports in the images bucket."""

    async def get_raw(self, key: str, path: Path) -> int:
        """Stream the raw upload at `key` to the file `path` (never whole in memory); returns its size.

        Raises:
            SourceMissing: there is no such upload. Any other failure of the store is raised as it is.
        """

    async def put_report(self, key: str, data: bytes) -> None:
        """Store a de-identification report (JSON) in the images bucket."""

    async def put_output(self, key: str, path: Path, media_type: str) -> None:
        """Store the de-identified file at `path` in the images bucket."""

    async def delete_raw(self, key: str) -> None:
        """Delete a raw upload (one already gone is no error)."""


@dataclass(frozen=True)
class Run:
    """The outcome of one image, as recorded with its event."""

    image_id: str
    case_id: str
    status: str
    reasons: list[str]
    actions: list[str]
    incoming_key: str
    object_key: str | None
    size_in: int | None
    size_out: int | None
    key_id: str


class Runs(Protocol):
    """The record of de-identification runs, one per image."""

    async def record(self, session: AsyncSession, run: Run) -> None:
        """Record an outcome in the delivery's transaction; an image recorded already keeps its first one."""

    async def mark_raw_deleted(self, image_id: str) -> None:
        """Note, in a transaction of its own, that an image's raw upload is gone."""


class SweptRuns(Runs, Protocol):
    """The runs record as the sweeper also reads it."""

    async def raw_left(self, limit: int = 500) -> list[tuple[str, str]]:
        """(image id, raw object key) of outcomes whose raw upload was not deleted yet."""


class Deidentifier(Protocol):
    """De-identification of one spooled file, its result written next to it."""

    async def run(self, src: Path, dst: Path, key: CaseKey, ocr: bool) -> Outcome:
        """De-identify `src` as `key`'s case, writing a ready result to `dst`.

        Raises:
            casebook_anonymiser.worker.TaskTimeout: the task ran past its time limit and was stopped.
            concurrent.futures.process.BrokenProcessPool: a worker died (this task's or another's); running
                it again may succeed.
        """
