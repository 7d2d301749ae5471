"""The ports of the achievements service: what its handlers and routes need, whatever stores it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CollectorCase:
    """One case as the Collector count knows it."""

    case_id: str
    owner_id: str
    public: bool
    deleted: bool
    revision: int


class Collector(Protocol):
    """Cases counted for the Collector achievement and the levels already awarded (one transaction)."""

    async def case(self, case_id: str) -> CollectorCase | None:
        """The case as known, locked for the caller's decision; None when never seen."""

    async def put_case(self, case: CollectorCase) -> None:
        """Store a case's state (insert or replace)."""

    async def count(self, user_id: str) -> int:
        """How many public, not deleted cases `user_id` owns."""

    async def awarded_level(self, user_id: str) -> int:
        """The highest level already announced to `user_id` (0 when none), locked for the caller."""

    async def save_award(self, user_id: str, level: int) -> None:
        """Record that `level` has been announced to `user_id`."""
