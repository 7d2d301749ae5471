"""The Collector port in memory, for the service-test tier (no database)."""

from __future__ import annotations

from casebook_achievements.ports import CollectorCase
from casebook_platform.memory import MemoryStore


class MemoryCollector(MemoryStore):
    """Cases and awarded levels in two dicts."""

    def __init__(self) -> None:
        super().__init__()
        cases: dict[str, CollectorCase] = {}
        awards: dict[str, int] = {}
        self.state = {"cases": cases, "awards": awards}

    async def case(self, case_id: str) -> CollectorCase | None:
        found: CollectorCase | None = self.state["cases"].get(case_id)
        return found

    async def put_case(self, case: CollectorCase) -> None:
        self.state["cases"][case.case_id] = case

    async def count(self, user_id: str) -> int:
        return sum(1 for c in self.state["cases"].values() if c.owner_id == user_id and c.public and not c.deleted)

    async def awarded_level(self, user_id: str) -> int:
        level: int = self.state["awards"].get(user_id, 0)
        return level

    async def save_award(self, user_id: str, level: int) -> None:
        self.state["awards"][user_id] = level
