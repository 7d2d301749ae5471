"""The ports of the gateway's event handlers: its read model and the de-identified objects, whatever stores them.

`adapters.readmodel` implements them on PostgreSQL and the object store (what the app wires);
`adapters.memory` implements them in memory (the service-test tier).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

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


class ImageObjects(Protocol):
    """The images bucket, as far as the handlers touch it."""

    async def delete(self, key: str) -> None:
        """Remove the object at `key` (no error when there is none)."""


ReadModelFor = Callable[[Delivery], ReadModel]
"""The read model within a delivery's transaction."""
