"""The ports of the moderation service: the review queue as its event handlers use it, whatever stores it.

Each operation takes the delivery's session first, so `casebook_moderation.adapters.queue` (PostgreSQL)
is itself an implementation; `adapters.memory.MemoryQueue` is the other one (the service-test tier).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import CaseSubmitted, Reason
from casebook_moderation import core
from casebook_moderation.adapters.queue import Emit


class Queue(Protocol):
    """The review queue, within one transaction."""

    async def lock_case(self, session: AsyncSession, case_id: str) -> None: ...

    async def get_item(self, session: AsyncSession, case_id: str, *, for_update: bool = False) -> Any: ...

    async def update_item(self, session: AsyncSession, case_id: str, **values: Any) -> None: ...

    async def case_images(self, session: AsyncSession, case_id: str) -> dict[str, core.ImageState]: ...

    async def record_image(self, session: AsyncSession, case_id: str, image: core.ImageState) -> None: ...

    async def save_submission(self, session: AsyncSession, e: CaseSubmitted, submitted_at: datetime) -> bool: ...

    async def close_case(self, session: AsyncSession, case_id: str, owner_id: str, *, state: str,
                         revision: int = 0) -> None: ...

    async def decide(self, session: AsyncSession, item: Any, *, approve: bool, editor_id: str | None,
                     reasons: Sequence[Reason], now: datetime, emit: Emit) -> None: ...
