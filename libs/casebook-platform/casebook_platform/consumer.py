"""Idempotent event consumption: effect and processed-event record in one transaction, bounded retries, DLQ."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_events import Envelope, decode, dlq, make_envelope
from casebook_platform.db import Database, PlatformTables
from casebook_platform.logs import bind_event
from casebook_platform.metrics import Metrics
from casebook_platform.outbox import OutboxRelay, enqueue
from casebook_platform.settings import CommonSettings

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One event being handled: its envelope and model, and the transaction to apply its effect in."""

    envelope: Envelope
    event: Any
    session: AsyncSession
    tables: PlatformTables
    producer: str
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def emit(self, event: BaseModel, *, key: str) -> Envelope:
        """Announce a follow-up event through the outbox, in this same transaction."""
        env = make_envelope(event, producer=self.producer, key=key)
        await enqueue(self.session, self.tables, env)
        return env


Handler = Callable[[Delivery], Awaitable[None]]


class PermanentError(Exception):
    """The message can never succeed (bad payload, unknown type): skip the retries, go to the DLQ."""


class EventConsumer:
    """Subscribes one consumer group to a service's topics and applies each event exactly once in effect.

    At-least-once delivery: the offset is committed only after the effect's transaction commits (FastStream's
    ack after the handler returns). A redelivered event finds its id in `processed_events` and changes nothing.
    A message that keeps failing goes to `<topic>.dlq` with the error after `consumer_max_attempts`, so one
    poison message never blocks its partition.
    """

    def __init__(self, *, settings: CommonSettings, broker: KafkaBroker, db: Database, tables: PlatformTables,
                 metrics: Metrics, relay: OutboxRelay | None, handlers: dict[str, Handler],
                 concurrency: int = 1) -> None:
        self.settings = settings
        self.broker = broker
        self.db = db
        self.tables = tables
        self.metrics = metrics
        self.relay = relay
        self.handlers = handlers
        self.service = settings.service_name
        self.concurrency = concurrency

    @property
    def topics(self) -> list[str]:
        return sorted(self.handlers)

    def subscribe(self) -> None:
        """Register the subscriber with the broker (call before the broker starts)."""
        if not self.handlers:
            return
        s = self.settings

        commit = {"pending": 0, "last": time.monotonic()}

        async def on_message(msg: KafkaMessage) -> None:
            rec: Any = msg.raw_message
            try:
                await self.process(rec.topic, msg.body, headers=dict(msg.headers), partition=rec.partition,
                                   offset=rec.offset, key=rec.key)
            except BaseException:
                await msg.nack()  # seek back: this message is delivered again
                raise
            # Messages are handled one at a time, so committing the position covers every earlier effect.
            # Committing every message costs a broker round trip (an S3 write on Tansu); a tail left
            # uncommitted is only redelivered after a restart and then skipped as already processed.
            commit["pending"] += 1
            if commit["pending"] >= s.consumer_commit_every or time.monotonic() - commit["last"] > 1.0:
                await msg.ack()
                commit["pending"], commit["last"] = 0, time.monotonic()

        common: dict[str, Any] = {
            "group_id": s.consumer_group or f"casebook-{self.service}",
            "auto_offset_reset": "earliest",  # Tansu 0.6 reports wrong end offsets: never rely on `latest`
            "ack_policy": AckPolicy.MANUAL,
            "session_timeout_ms": s.kafka_session_timeout_ms,
            "heartbeat_interval_ms": max(300, s.kafka_session_timeout_ms // 4),
            "fetch_max_wait_ms": s.kafka_fetch_max_wait_ms,
            "max_poll_interval_ms": 600_000,
        }
        if self.concurrency <= 1:
            self.broker.subscriber(*self.topics, **common)(on_message)
            return

        async def on_batch(msg: KafkaMessage) -> None:
            # Independent events (one image each) are handled side by side; the batch is committed only
            # when every one of them is durable, so the committed position never passes unfinished work.
            records: tuple[Any, ...] = msg.raw_message
            gate = asyncio.Semaphore(self.concurrency)

            async def one(rec: Any) -> None:
                async with gate:
                    await self.process(rec.topic, rec.value or b"",
                                       headers={k: v.decode() for k, v in rec.headers}, partition=rec.partition,
                                       offset=rec.offset, key=rec.key)

            try:
                await asyncio.gather(*(one(r) for r in records))
            except BaseException:
                await msg.nack()
                raise
            await msg.ack()

        self.broker.subscriber(*self.topics, batch=True, max_records=self.concurrency * 4, **common)(on_batch)

    async def process(self, topic: str, raw: bytes, *, headers: dict[str, Any] | None = None,
                      partition: int = -1, offset: int = -1, key: bytes | None = None) -> str:
        """Apply one message; returns `processed`, `duplicate` or `dead_lettered`."""
        try:
            envelope = decode(raw)
            if envelope.type != topic or topic not in self.handlers:
                raise PermanentError(f"event type {envelope.type!r} does not belong on {topic!r}")
            event = envelope.model()
        except (ValidationError, KeyError, ValueError, PermanentError) as exc:
            await self._dead_letter(topic, raw, key, headers, partition, offset, exc, attempts=1)
            return "dead_lettered"

        with bind_event(envelope):
            attempts = self.settings.consumer_max_attempts
            for attempt in range(1, attempts + 1):
                try:
                    outcome = await self._apply(topic, envelope, event)
                    return outcome
                except PermanentError as exc:
                    await self._dead_letter(topic, raw, key, headers, partition, offset, exc, attempts=attempt)
                    return "dead_lettered"
                except Exception as exc:
                    if attempt == attempts:
                        log.error("giving up on %s after %d attempts", topic, attempt, exc_info=True)
                        await self._dead_letter(topic, raw, key, headers, partition, offset, exc, attempts=attempt)
                        return "dead_lettered"
                    self.metrics.event_retries.labels(self.service, topic).inc()
                    log.warning("handler failed on %s (attempt %d/%d): %s", topic, attempt, attempts, exc)
                    await asyncio.sleep(self.settings.consumer_retry_backoff_s * 2 ** (attempt - 1))
        return "dead_lettered"  # pragma: no cover - the loop always returns

    async def _apply(self, topic: str, envelope: Envelope, event: Any) -> str:
        p = self.tables.processed
        async with self.db.sessions() as session, session.begin():
            inserted = (await session.execute(
                pg_insert(p).values(event_id=envelope.event_id, topic=topic)
                .on_conflict_do_nothing().returning(p.c.event_id)
            )).first()
            if inserted is None:
                self.metrics.events_duplicate.labels(self.service, topic).inc()
                return "duplicate"
            delivery = Delivery(envelope=envelope, event=event, session=session, tables=self.tables,
                                producer=self.service)
            await self.handlers[topic](delivery)
        self.metrics.events_processed.labels(self.service, topic).inc()
        if self.relay is not None:
            self.relay.nudge()
        for hook in delivery.after_commit:
            try:
                await hook()
            except Exception:
                log.warning("after-commit hook failed", exc_info=True)
        return "processed"

    async def _dead_letter(self, topic: str, raw: bytes, key: bytes | None, headers: dict[str, Any] | None,
                           partition: int, offset: int, exc: BaseException, *, attempts: int) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        dlq_headers = {k: v if isinstance(v, str) else str(v) for k, v in (headers or {}).items()}
        dlq_headers.update({
            "x-error": error, "x-original-topic": topic, "x-original-partition": str(partition),
            "x-original-offset": str(offset), "x-attempts": str(attempts), "x-service": self.service,
            "x-failed-at": datetime.now(UTC).isoformat(),
        })
        started = time.monotonic()
        while True:
            try:
                await self.broker.publish(raw, dlq(topic), key=key, headers=dlq_headers)
                break
            except Exception:
                # Without the DLQ copy the message must not be acknowledged; wait rather than spin.
                if time.monotonic() - started > 30:
                    raise
                await asyncio.sleep(1.0)
        self.metrics.dlq_messages.labels(self.service, topic).inc()
        log.error("sent message from %s[%s]@%s to %s: %s", topic, partition, offset, dlq(topic), error)


def topics_with_dlq(topics: Iterable[str]) -> list[str]:
    """Each topic and its dead-letter topic (for creating them up front)."""
    return [t for topic in topics for t in (topic, dlq(topic))]
