"""The consumer without a database, for the service-test tier on FastStream's in-memory broker.

`MemoryConsumer` is the real `EventConsumer` (the same subscription, envelope decoding, failure handling
and dead-lettering) with its unit of work kept in memory: the processed-event record is a set, a service's
in-memory adapters (`MemoryStore`) are rolled back when a handler fails, and the events a handler emits
are published to the broker once it has succeeded, as the outbox relay would after the commit.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import Envelope, encode, make_envelope
from casebook_platform.consumer import Delivery, EventConsumer, Handler
from casebook_platform.db import Database, PlatformTables
from casebook_platform.metrics import Metrics
from casebook_platform.settings import CommonSettings

log = logging.getLogger(__name__)


class MemoryStore:
    """Base of a service's in-memory adapters: its whole state in `self.state`, copied for rollback."""

    state: dict[str, Any]

    def __init__(self) -> None:
        self.state = {}

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.state = snapshot


@dataclass
class MemoryDelivery(Delivery):
    """A delivery whose follow-up events wait in memory until the handler has succeeded."""

    outbox: list[Envelope] = field(default_factory=list)

    async def emit(self, event: BaseModel, *, key: str) -> Envelope:
        env = make_envelope(event, producer=self.producer, key=key)
        self.outbox.append(env)
        return env


class MemoryConsumer(EventConsumer):
    """`EventConsumer` with the processed-event record, the transaction and the outbox in memory."""

    def __init__(self, *, settings: CommonSettings, broker: KafkaBroker, handlers: dict[str, Handler],
                 stores: Sequence[MemoryStore] = (), metrics: Metrics | None = None) -> None:
        # No database: `_apply` below is the only part of the consumer that would use one.
        super().__init__(settings=settings, broker=broker, db=cast(Database, None),
                         tables=cast(PlatformTables, None), metrics=metrics or Metrics(settings.service_name),
                         relay=None, handlers=handlers)
        self.stores = tuple(stores)
        self.processed: set[str] = set()
        self.published: list[Envelope] = []

    async def _apply(self, topic: str, envelope: Envelope, event: Any) -> str:
        if envelope.event_id in self.processed:
            self.metrics.events_duplicate.labels(self.service, topic).inc()
            return "duplicate"
        snapshots = [s.snapshot() for s in self.stores]
        delivery = MemoryDelivery(envelope=envelope, event=event, session=cast(AsyncSession, None),
                                  tables=cast(PlatformTables, None), producer=self.service)
        try:
            await self.handlers[topic](delivery)
        except BaseException:
            for store, snapshot in zip(self.stores, snapshots, strict=True):
                store.restore(snapshot)
            raise
        self.processed.add(envelope.event_id)
        self.metrics.events_processed.labels(self.service, topic).inc()
        for env in delivery.outbox:
            self.published.append(env)
            await self.broker.publish(encode(env), env.type, key=env.key.encode())
        for hook in delivery.after_commit:
            try:
                await hook()
            except Exception:
                log.warning("after-commit hook failed", exc_info=True)
        return "processed"
