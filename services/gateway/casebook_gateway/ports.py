"""The ports of the gateway: its read model, the case's objects and the outbox, whatever stores them.

`adapters.readmodel` and `adapters.objects` implement them on PostgreSQL and the object store (what the app
wires); `adapters.memory` implements the read model and the objects in memory (the service-test tier).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import Envelope
from casebook_platform.consumer import Delivery


@dataclass(frozen=True)
class Revision:
    """One frozen submission of a case, as the decision handlers read it."""

    n: int
    status: str
    content: dict[str, Any]


class ReadModel(Protocol):
    """Cases, their revisions, images and history, and export requests, within one delivery's transaction."""

    async def case_for_update(self, case_id: str) -> dict[str, Any] | None:
        """The case's row, locked until the transaction ends; None when it was deleted."""

    async def update_case(self, case_id: str, **values: Any) -> None:
        """Set columns of the case (nothing happens when it is gone)."""

    async def revision_for_update(self, case_id: str, n: int) -> Revision | None:
        """Revision `n` of the case, locked until the transaction ends; None when there is none."""

    async def decide_revision(self, case_id: str, n: int, *, status: str, by: str, at: datetime,
                              reasons: Sequence[dict[str, str]] = ()) -> None:
        """Record the decision on revision `n`."""

    async def update_image(self, image_id: str, **values: Any) -> bool:
        """Set columns of the image; False when it is gone (its case was deleted)."""

    async def record_history(self, case_id: str, *, actor: str, action: str, from_status: str | None = None,
                             to_status: str | None = None, reasons: Sequence[dict[str, str]] = (),
                             revision: int | None = None) -> None:
        """Append a row to the case's history."""

    async def update_export(self, export_id: str, **values: Any) -> None:
        """Set columns of the export request (nothing happens when it is gone)."""


class ObjectBody(Protocol):
    """An object being read from the store, a chunk at a time (blocking: read it in a worker thread)."""

    def read(self, size: int, /) -> bytes:
        """Up to `size` bytes; empty at the end."""

    def close(self) -> None:
        """Let go of the object (and of the connection it holds)."""


class ImageObjects(Protocol):
    """A case's objects: the de-identified images and their reports, and the raw uploads of the case."""

    async def delete(self, key: str) -> None:
        """Remove the de-identified object at `key` (no error when there is none)."""

    async def read(self, key: str) -> bytes | None:
        """The whole de-identified object at `key`; None when there is none."""

    def open(self, key: str) -> ObjectBody:
        """The de-identified object at `key`, to read in chunks (blocking: call it in a worker thread).

        Raises:
            Exception: the store's error when there is no such object or it cannot be reached.
        """

    async def delete_case(self, case_id: str) -> None:
        """Remove every object of the case, raw and de-identified: a store that fails is logged, not raised
        (the case is already gone; what is left is an orphan for the operator)."""


class Outbox(Protocol):
    """Events written in the caller's transaction; the relay publishes them once it has committed."""

    async def emit(self, session: AsyncSession, event: BaseModel, *, key: str) -> Envelope:
        """Write `event` (keyed by `key`) into the outbox within `session`'s transaction."""


ReadModelFor = Callable[[Delivery], ReadModel]
"""The read model within a delivery's transaction."""
