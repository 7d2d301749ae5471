"""The transactional outbox: events are written with the state change, then relayed to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream.kafka import KafkaBroker
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from casebook_events import Envelope, encode
from casebook_platform.db import PlatformTables
from casebook_platform.metrics import Metrics

log = logging.getLogger(__name__)


async def enqueue(session: AsyncSession, tables: PlatformTables, envelope: Envelope,
                  *, topic: str | None = None, headers: dict[str, str] | None = None) -> None:
    """Write an event into the outbox inside the caller's transaction (so it commits with the change)."""
    await session.execute(insert(tables.outbox).values(
        event_id=envelope.event_id, topic=topic or envelope.type, key=envelope.key, value=encode(envelope),
        headers={"event_type": envelope.type, "event_id": envelope.event_id, **(headers or {})},
    ))


class OutboxRelay:
    """Publishes outbox rows in id order and deletes them once the broker has acknowledged them.

    At-least-once: a crash between the acknowledgement and the delete republishes the batch, which the
    consumers' processed-event record makes harmless. `SKIP LOCKED` lets several replicas relay at once.
    """

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], tables: PlatformTables, broker: KafkaBroker,
                 metrics: Metrics, poll_interval: float = 0.05, batch_size: int = 500) -> None:
        self._sessions = sessions
        self._tables = tables
        self._broker = broker
        self._metrics = metrics
        self._poll = poll_interval
        self._batch = batch_size
        self._wake = asyncio.Event()
        self._stopping = False

    def nudge(self) -> None:
        """Wake the relay now (called after a commit that wrote events)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Relay one batch; returns how many events were published."""
        t = self._tables.outbox
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(
                select(t.c.id, t.c.topic, t.c.key, t.c.value, t.c.headers)
                .order_by(t.c.id).limit(self._batch).with_for_update(skip_locked=True)
            )).all()
            if not rows:
                return 0
            futures = [
                await self._broker.publish(r.value, r.topic, key=r.key.encode(), headers=dict(r.headers),
                                           no_confirm=True)
                for r in rows
            ]
            await asyncio.gather(*futures)
            await session.execute(delete(t).where(t.c.id.in_([r.id for r in rows])))
        for r in rows:
            self._metrics.outbox_published.labels(self._metrics.service, r.topic).inc()
        return len(rows)

    async def backlog(self) -> int:
        async with self._sessions() as session:
            return int((await session.execute(select(func.count()).select_from(self._tables.outbox))).scalar_one())

    async def run(self) -> None:
        """Relay until stopped; back off on broker or database errors instead of spinning."""
        failures = 0
        ticks = 0
        while not self._stopping:
            try:
                n = await self.relay_once()
                failures = 0
                ticks += 1
                if ticks % 20 == 0 or n:
                    self._metrics.outbox_backlog.labels(self._metrics.service).set(await self.backlog())
                if n == self._batch:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.warning("outbox relay failed (attempt %d); retrying", failures, exc_info=failures == 1)
                await asyncio.sleep(min(5.0, 0.2 * 2 ** min(failures, 5)))
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
