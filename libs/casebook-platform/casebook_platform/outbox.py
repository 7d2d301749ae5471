"""The transactional outbox: events are written with the state change, then relayed to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from faststream.kafka import KafkaBroker
from sqlalchemy import cast, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from casebook_events import Envelope, encode
from casebook_platform.db import PlatformTables
from casebook_platform.failures import backoff, park_reason
from casebook_platform.metrics import Metrics

log = logging.getLogger(__name__)


async def enqueue(session: AsyncSession, tables: PlatformTables, envelope: Envelope,
                  *, topic: str | None = None, headers: dict[str, str] | None = None) -> None:
    """Write an event into the outbox inside the caller's transaction (so it commits with the change)."""
    await session.execute(insert(tables.outbox).values(
        event_id=envelope.event_id, topic=topic or envelope.type, key=envelope.key, value=encode(envelope),
        headers={"event_type": envelope.type, "event_id": envelope.event_id, **(headers or {})},
    ))


PARKED = "x-outbox-parked"  # header keys the relay keeps for itself (never published)
LAST_ERROR = "x-outbox-error"
PARK_AFTER_ATTEMPTS = 10


class OutboxRelay:
    """Publishes outbox rows in id order and deletes them once the broker has acknowledged them.

    At-least-once: a crash between the acknowledgement and the delete republishes the batch, which the
    consumers' processed-event record makes harmless. `SKIP LOCKED` lets several replicas relay at once.
    A row the broker will never take (too large, or refused again and again while the broker is up) is
    parked: it stays in the table with its attempts and last error, is counted in `casebook_outbox_parked`,
    and no longer holds back the rows behind it. `casebook outbox` (docs/operations.md) lists and retries them.
    """

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], tables: PlatformTables, broker: KafkaBroker,
                 metrics: Metrics, poll_interval: float = 0.05, batch_size: int = 500,
                 gauge_interval: float = 5.0) -> None:
        self._sessions = sessions
        self._tables = tables
        self._broker = broker
        self._metrics = metrics
        self._poll = poll_interval
        self._batch = batch_size
        self._gauge_interval = gauge_interval
        self._wake = asyncio.Event()
        self._stopping = False
        self.failing_since: float | None = None
        self.last_error = ""

    def nudge(self) -> None:
        """Wake the relay now (called after a commit that wrote events)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Relay one batch; returns how many rows were dealt with (published or parked).

        Raises:
            Exception: the broker could not be reached; rows not published stay for the next attempt.
        """
        t = self._tables.outbox
        transient: BaseException | None = None
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(
                select(t.c.id, t.c.topic, t.c.key, t.c.value, t.c.headers, t.c.attempts)
                .where(~t.c.headers.has_key(PARKED))
                .order_by(t.c.id).limit(self._batch).with_for_update(skip_locked=True)
            )).all()
            if not rows:
                return 0

            async def send(r: Any) -> None:
                headers = {k: v for k, v in dict(r.headers).items() if not k.startswith("x-outbox-")}
                future = await self._broker.publish(r.value, r.topic, key=r.key.encode(), headers=headers,
                                                    no_confirm=True)
                await future

            results = await asyncio.gather(*(send(r) for r in rows), return_exceptions=True)
            done: list[int] = []
            for r, res in zip(rows, results, strict=True):
                if not isinstance(res, BaseException):
                    done.append(r.id)
                    self._metrics.outbox_published.labels(self._metrics.service, r.topic).inc()
                    continue
                reason = park_reason(res)
                if reason is None and _broker_unreachable(res):
                    transient = transient or res
                    continue
                attempts = r.attempts + 1
                error = f"{type(res).__name__}: {res}"[:1000]
                if reason is None and attempts < PARK_AFTER_ATTEMPTS:
                    transient = transient or res
                    await session.execute(update(t).where(t.c.id == r.id).values(
                        attempts=attempts, headers=t.c.headers.op("||")(cast({LAST_ERROR: error}, JSONB))))
                    continue
                reason = reason or "refused"
                await session.execute(update(t).where(t.c.id == r.id).values(
                    attempts=attempts,
                    headers=t.c.headers.op("||")(cast({PARKED: reason, LAST_ERROR: error}, JSONB))))
                self._metrics.outbox_parked_total.labels(self._metrics.service, r.topic, reason).inc()
                log.error("parked outbox row %s (event %s on %s, %d bytes): %s", r.id, r.headers.get("event_id"),
                          r.topic, len(r.value), error)
                done.append(-r.id)  # dealt with, not published
            published = [i for i in done if i > 0]
            if published:
                await session.execute(delete(t).where(t.c.id.in_(published)))
        if transient is not None:
            raise transient
        return len(done)

    async def backlog(self) -> int:
        """Rows waiting to be relayed (parked rows are counted apart, by `parked`)."""
        t = self._tables.outbox
        async with self._sessions() as session:
            return int((await session.execute(
                select(func.count()).select_from(t).where(~t.c.headers.has_key(PARKED)))).scalar_one())

    async def parked(self) -> int:
        t = self._tables.outbox
        async with self._sessions() as session:
            return int((await session.execute(
                select(func.count()).select_from(t).where(t.c.headers.has_key(PARKED)))).scalar_one())

    async def refresh_gauges(self) -> None:
        self._metrics.outbox_backlog.labels(self._metrics.service).set(await self.backlog())
        self._metrics.outbox_parked.labels(self._metrics.service).set(await self.parked())

    async def run(self) -> None:
        """Relay until stopped; back off on broker or database errors instead of spinning."""
        failures = 0
        counted = 0.0
        while not self._stopping:
            # Cleared before the batch, not after: a nudge that arrives while a batch is relayed (a commit
            # that wrote events meanwhile) must wake the next round at once, not wait for the poll.
            self._wake.clear()
            try:
                n = await self.relay_once()
                if failures:
                    log.info("outbox relay recovered after %d failed attempts", failures)
                failures = 0
                self.failing_since, self.last_error = None, ""
                # The gauges cost two COUNT(*) of the outbox: on a timer, never per relayed batch.
                if time.monotonic() - counted >= self._gauge_interval:
                    await self.refresh_gauges()
                    counted = time.monotonic()
                if n == self._batch:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged; the relay backs off and tries again
                failures += 1
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if failures == 1 or failures % 20 == 0:
                    log.warning("outbox relay failed (attempt %d); events wait in the outbox: %s", failures,
                                self.last_error)
                await asyncio.sleep(backoff(failures, first=0.2, cap=5.0))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


def _broker_unreachable(exc: BaseException) -> bool:
    from aiokafka import errors as ke

    return isinstance(exc, ke.KafkaConnectionError | ke.KafkaTimeoutError | ke.NodeNotReadyError
                      | ke.RequestTimedOutError | ke.NotLeaderForPartitionError | ke.LeaderNotAvailableError
                      | OSError | TimeoutError)
