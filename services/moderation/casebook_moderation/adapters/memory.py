"""The review queue in memory: the `Queue` port for the service-test tier (no database).

The rules (a quarantine is final, a stale submission changes nothing, a withdrawal is remembered for
later events) are the core's, called by both queues; tests/integration/test_adapter_parity.py runs one
scenario through this queue and the PostgreSQL one and compares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from casebook_events import CaseSubmitted, Reason
from casebook_moderation import core
from casebook_moderation.adapters.queue import Emit
from casebook_platform.memory import MemoryStore


@dataclass
class Item:
    """One row of the queue, with the table's defaults."""

    case_id: str
    owner_id: str
    revision: int
    state: str
    owner_name: str = ""
    title: str = ""
    withdrawn_revision: int = 0
    snapshot: dict[str, Any] = field(default_factory=dict)
    image_ids: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    advice: list[dict[str, Any]] = field(default_factory=list)
    diff: dict[str, Any] | None = None
    submitted_at: datetime | None = None
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None
    decided_at: datetime | None = None


class MemoryQueue(MemoryStore):
    """Items, image reports and decisions in dicts; reads return copies, as rows are."""

    def __init__(self) -> None:
        super().__init__()
        items: dict[str, Item] = {}
        images: dict[tuple[str, str], core.ImageState] = {}
        decisions: list[dict[str, Any]] = []
        self.state = {"items": items, "images": images, "decisions": decisions}

    @property
    def items(self) -> dict[str, Item]:
        found: dict[str, Item] = self.state["items"]
        return found

    @property
    def decisions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.state["decisions"]
        return found

    async def lock_case(self, session: Any, case_id: str) -> None:
        """Nothing to lock: the in-memory broker hands over one message at a time."""

    async def get_item(self, session: Any, case_id: str, *, for_update: bool = False) -> Item | None:
        item = self.items.get(case_id)
        return None if item is None else replace(item)

    async def update_item(self, session: Any, case_id: str, **values: Any) -> None:
        item = self.items.get(case_id)
        if item is not None:
            self.items[case_id] = replace(item, **values)

    async def case_images(self, session: Any, case_id: str) -> dict[str, core.ImageState]:
        found: dict[tuple[str, str], core.ImageState] = self.state["images"]
        return {image_id: im for (c, image_id), im in found.items() if c == case_id}

    async def record_image(self, session: Any, case_id: str, image: core.ImageState) -> None:
        images: dict[tuple[str, str], core.ImageState] = self.state["images"]
        images[(case_id, image.image_id)] = core.merge_report(images.get((case_id, image.image_id)), image)

    async def save_submission(self, session: Any, e: CaseSubmitted, submitted_at: datetime) -> bool:
        known = self.items.get(e.case_id)
        if known is not None and core.is_stale(known.state, known.revision, known.withdrawn_revision, e.revision):
            return False
        self.items[e.case_id] = Item(
            case_id=e.case_id, owner_id=e.owner_id, owner_name=e.owner_name, title=e.case.title,
            revision=e.revision, state="checking", snapshot=e.case.model_dump(mode="json"),
            image_ids=list(e.image_ids), diff=e.diff.model_dump(mode="json") if e.diff else None,
            submitted_at=submitted_at, withdrawn_revision=known.withdrawn_revision if known else 0)
        return True

    async def close_case(self, session: Any, case_id: str, owner_id: str, *, state: str, revision: int = 0) -> None:
        item = self.items.get(case_id)
        if item is None:
            self.items[case_id] = Item(case_id=case_id, owner_id=owner_id, revision=0, state=state,
                                       withdrawn_revision=revision)
        elif (values := core.closing(item.state, item.revision, item.withdrawn_revision, to=state, at=revision)):
            await self.update_item(session, case_id, **values)

    async def decide(self, session: Any, item: Any, *, approve: bool, editor_id: str | None,
                     reasons: Sequence[Reason], now: datetime, emit: Emit) -> None:
        outcome = "approved" if approve else "rejected"
        await self.update_item(session, item.case_id, state=outcome, decided_at=now, claimed_by=None,
                               claim_expires_at=None)
        self.decisions.append({"case_id": item.case_id, "revision": item.revision, "outcome": outcome,
                               "automatic": editor_id is None, "editor_id": editor_id,
                               "reasons": [r.model_dump() for r in reasons], "decided_at": now})
        await emit(core.decision_event(case_id=item.case_id, owner_id=item.owner_id, revision=item.revision,
                                       title=item.title, approve=approve, editor_id=editor_id, reasons=reasons,
                                       now=now))
