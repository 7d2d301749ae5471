"""The gateway's read model and objects in memory, for the service-test tier (no database, no object store).

Rows are dicts with the tables' defaults (`adapters/db.py`); reads return copies, as rows are. The rules
stay in the handlers, which run unchanged over this and over `adapters.readmodel`.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from casebook_events.lifecycle import RevisionStatus
from casebook_gateway.ports import Revision
from casebook_platform.memory import MemoryStore


class MemoryReadModel(MemoryStore):
    """Cases, revisions, images, history and export requests in dicts; seed them with the `add_*` methods."""

    def __init__(self) -> None:
        super().__init__()
        self.state = {"cases": {}, "revisions": {}, "images": {}, "history": [], "exports": {}}

    @property
    def cases(self) -> dict[str, dict[str, Any]]:
        return self.state["cases"]  # type: ignore[no-any-return]

    @property
    def revisions(self) -> dict[tuple[str, int], dict[str, Any]]:
        return self.state["revisions"]  # type: ignore[no-any-return]

    @property
    def images(self) -> dict[str, dict[str, Any]]:
        return self.state["images"]  # type: ignore[no-any-return]

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.state["history"]  # type: ignore[no-any-return]

    @property
    def exports(self) -> dict[str, dict[str, Any]]:
        return self.state["exports"]  # type: ignore[no-any-return]

    def add_case(self, case_id: str, *, status: str, visibility: str, **values: Any) -> None:
        now = datetime.now(UTC)
        self.cases[case_id] = {
            "id": case_id, "owner_id": "alice", "owner_name": "Alice", "title": "", "revision": 1,
            "status": status, "visibility": visibility, "listed_public": False, "public_snapshot": None,
            "approved_at": None, "moderation_reasons": [], "share_token": None, "created_at": now,
            "updated_at": now, **values}

    def add_revision(self, case_id: str, n: int, *, status: str = RevisionStatus.SUBMITTED,
                     content: dict[str, Any] | None = None) -> None:
        self.revisions[(case_id, n)] = {"case_id": case_id, "n": n, "status": status, "content": content or {},
                                        "reasons": [], "submitted_by": self.cases[case_id]["owner_id"],
                                        "decided_by": None, "decided_at": None}

    def add_image(self, image_id: str, case_id: str, *, status: str = "processing") -> None:
        nulls = ("object_key", "media_type", "size", "sha256", "modality", "series_uid", "series_number",
                 "series_description", "instance_number", "rows", "columns", "frames")
        self.images[image_id] = {"id": image_id, "case_id": case_id, "status": status, "reasons": [],
                                 **dict.fromkeys(nulls)}

    def add_export(self, export_id: str, *, status: str = "queued") -> None:
        self.exports[export_id] = {"id": export_id, "status": status, "object_key": None, "expires_at": None,
                                   "error": None}

    def delete_case(self, case_id: str) -> None:
        """What deleting a case does on PostgreSQL: its revisions, images and history go with it (cascade)."""
        self.cases.pop(case_id)
        for key in [k for k in self.revisions if k[0] == case_id]:
            del self.revisions[key]
        for image_id in [i for i, im in self.images.items() if im["case_id"] == case_id]:
            del self.images[image_id]
        self.state["history"] = [h for h in self.history if h["case_id"] != case_id]

    async def case_for_update(self, case_id: str) -> dict[str, Any] | None:
        row = self.cases.get(case_id)
        return None if row is None else copy.deepcopy(row)

    async def update_case(self, case_id: str, **values: Any) -> None:
        if case_id in self.cases:
            self.cases[case_id].update(copy.deepcopy(values))

    async def revision_for_update(self, case_id: str, n: int) -> Revision | None:
        row = self.revisions.get((case_id, n))
        return None if row is None else Revision(n=n, status=row["status"], content=copy.deepcopy(row["content"]))

    async def decide_revision(self, case_id: str, n: int, *, status: str, by: str, at: datetime,
                              reasons: Sequence[dict[str, str]] = ()) -> None:
        row = self.revisions.get((case_id, n))
        if row is not None:
            row.update(status=status, decided_by=by, decided_at=at, reasons=copy.deepcopy(list(reasons)))

    async def update_image(self, image_id: str, **values: Any) -> bool:
        row = self.images.get(image_id)
        if row is None:
            return False
        row.update(copy.deepcopy(values))
        return True

    async def record_history(self, case_id: str, *, actor: str, action: str, from_status: str | None = None,
                             to_status: str | None = None, reasons: Sequence[dict[str, str]] = (),
                             revision: int | None = None) -> None:
        if case_id not in self.cases:  # the table's foreign key refuses it too
            raise LookupError(f"no case {case_id} to record history on")
        self.history.append({"case_id": case_id, "at": datetime.now(UTC), "actor": actor, "action": action,
                             "from_status": from_status, "to_status": to_status,
                             "reasons": copy.deepcopy(list(reasons)), "revision": revision})

    async def update_export(self, export_id: str, **values: Any) -> None:
        if export_id in self.exports:
            self.exports[export_id].update(copy.deepcopy(values))


class MemoryImages:
    """The images bucket (`objects`) and the raw uploads (`incoming`) in dicts; `deleted` lists the removals
    from the images bucket in order. Keys given to the constructor hold empty objects."""

    def __init__(self, *keys: str) -> None:
        self.objects: dict[str, bytes] = dict.fromkeys(keys, b"")
        self.incoming: dict[str, bytes] = {}
        self.deleted: list[str] = []

    @property
    def keys(self) -> set[str]:
        """The keys in the images bucket."""
        return set(self.objects)

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.deleted.append(key)

    async def read(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def open(self, key: str) -> io.BytesIO:
        if key not in self.objects:
            raise LookupError(f"no object {key}")
        return io.BytesIO(self.objects[key])

    async def delete_case(self, case_id: str) -> None:
        prefix = f"{case_id}/"
        for key in sorted(k for k in self.objects if k.startswith(prefix)):
            await self.delete(key)
        self.incoming = {k: v for k, v in self.incoming.items() if not k.startswith(prefix)}
