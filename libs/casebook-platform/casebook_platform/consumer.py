"""Idempotent event consumption: effect and processed-event record in one transaction, classified retries, DLQ."""

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
from casebook_platform.failures import PermanentError, backoff, classify, dependency_of
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


__all__ = ["Delivery", "EventConsumer", "Handler", "PermanentError", "Stall", "rewind", "topics_with_dlq"]


@dataclass
class Stall:
    """A partition waiting for a dependency: what failed, since when, how often."""

    topic: str
    partition: int
    dependency: str
    error: str
    since: float
    attempts: int = 0
    offset: int = -1

    def describe(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "waiting_for": self.dependency,
                "error": self.error, "attempts": self.attempts, "seconds": round(time.monotonic() - self.since, 1)}


def rewind(consumer: Any, records: Iterable[Any]) -> dict[tuple[str, int], int]:
    """Seek every partition a failed batch touched back to its earliest record in the batch.

    The consumer's position is per partition; rewinding only one of them would let a later commit pass
    another partition's unprocessed messages. Returns the offsets sought to.
    """
    from aiokafka import TopicPartition

    earliest: dict[tuple[str, int], int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        if tp not in earliest or r.offset < earliest[tp]:
            earliest[tp] = r.offset
    for (topic, partition), offset in earliest.items():
        consumer.seek(TopicPartition(topic, partition), offset)
    return earliest


class EventConsumer:
    """Subscribes one consumer group to a service's topics and applies each event exactly once in effect.

    At-least-once delivery: the offset is committed only after the effect's transaction commits (FastStream's
    ack after the handler returns). A redelivered event finds its id in `processed_events` and changes nothing.
    Failures are classified (`casebook_platform.failures`): a message that can never succeed goes to
    `<topic>.dlq` so it does not block its partition; one that fails because a dependency is down waits,
    retried with capped backoff for as long as it takes, and the stall is visible in `stalls` (readiness
    body), the `casebook_consumer_stalled` gauge and the log.
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
        self.stalls: dict[tuple[str, int], Stall] = {}

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
                consumer = getattr(msg, "consumer", None)
                if consumer is not None:
                    rewind(consumer, records)
                await msg.nack()
                raise
            await msg.ack()

        self.broker.subscriber(*self.topics, batch=True, max_records=self.concurrency * 4, **common)(on_batch)

    async def process(self, topic: str, raw: bytes, *, headers: dict[str, Any] | None = None,
                      partition: int = -1, offset: int = -1, key: bytes | None = None) -> str:
        """Apply one message; returns `processed`, `duplicate` or `dead_lettered`.

        Returns only when the message is done with: applied, found already applied, or dead-lettered.
        A transient failure is retried here until it clears (or the task is cancelled at shutdown).
        """
        try:
            envelope = decode(raw)
            if envelope.type != topic or topic not in self.handlers:
                raise PermanentError(f"event type {envelope.type!r} does not belong on {topic!r}")
            event = envelope.model()
        except (ValidationError, KeyError, ValueError, PermanentError) as exc:
            await self._dead_letter(topic, raw, key, headers, partition, offset, exc, attempts=1)
            return "dead_lettered"

        s = self.settings
        with bind_event(envelope):
            attempt = 0
            deterministic = 0
            try:
                while True:
                    attempt += 1
                    try:
                        return await self._apply(topic, envelope, event)
                    except Exception as exc:
                        kind = classify(exc)
                        if kind == "permanent":
                            await self._dead_letter(topic, raw, key, headers, partition, offset, exc,
                                                    attempts=attempt)
                            return "dead_lettered"
                        self.metrics.event_retries.labels(self.service, topic).inc()
                        if kind == "deterministic":
                            deterministic += 1
                            if deterministic >= s.consumer_max_attempts:
                                log.error("giving up on %s after %d attempts", topic, attempt, exc_info=True)
                                await self._dead_letter(topic, raw, key, headers, partition, offset, exc,
                                                        attempts=attempt)
                                return "dead_lettered"
                            log.warning("handler failed on %s (attempt %d/%d): %s", topic, deterministic,
                                        s.consumer_max_attempts, exc)
                        else:
                            self._stalled(topic, partition, exc, attempt, offset)
                        await asyncio.sleep(backoff(attempt, first=s.consumer_retry_backoff_s,
                                                    cap=s.consumer_retry_max_backoff_s))
            finally:
                self._resumed(topic, partition, attempt, offset)

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

    def _stalled(self, topic: str, partition: int, exc: BaseException, attempt: int, offset: int = -1) -> None:
        what = dependency_of(exc)
        error = f"{type(exc).__name__}: {exc}"[:300]
        stall = self.stalls.get((topic, partition))
        if stall is not None and stall.offset != offset:
            return  # another message of this partition already reports the wait (batches run side by side)
        if stall is None:
            stall = self.stalls[(topic, partition)] = Stall(topic, partition, what, error, time.monotonic(),
                                                            offset=offset)
            self.metrics.consumer_stalled.labels(self.service, topic, str(partition)).set(1)
            # A handler error we cannot name gets its traceback once; a known outage only a line.
            log.warning("paused %s[%s]: waiting for %s (%s); retrying until it recovers", topic, partition,
                        what, error, exc_info=what == "handler")
        elif attempt % 10 == 0:
            log.warning("%s[%s] still waiting for %s after %d attempts (%.0f s): %s", topic, partition, what,
                        attempt, time.monotonic() - stall.since, error)
        stall.dependency, stall.error, stall.attempts = what, error, attempt

    def _resumed(self, topic: str, partition: int, attempts: int, offset: int = -1) -> None:
        stall = self.stalls.get((topic, partition))
        if stall is not None and stall.offset == offset:
            del self.stalls[(topic, partition)]
            self.metrics.consumer_stalled.labels(self.service, topic, str(partition)).set(0)
            log.info("resumed %s[%s] after %d attempts (%.1f s waiting for %s)", topic, partition, attempts,
                     time.monotonic() - stall.since, stall.dependency)

    async def _dead_letter(self, topic: str, raw: bytes, key: bytes | None, headers: dict[str, Any] | None,
                           partition: int, offset: int, exc: BaseException, *, attempts: int) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        dlq_headers = {k: v if isinstance(v, str) else str(v) for k, v in (headers or {}).items()}
        dlq_headers.update({
            "x-error": error, "x-original-topic": topic, "x-original-partition": str(partition),
            "x-original-offset": str(offset), "x-attempts": str(attempts), "x-service": self.service,
            "x-failed-at": datetime.now(UTC).isoformat(),
        })
        attempt = 0
        while True:
            try:
                await self.broker.publish(raw, dlq(topic), key=key, headers=dlq_headers)
                break
            except Exception as exc:  # noqa: BLE001 - logged by _stalled; the loop waits for the broker
                # Without the DLQ copy the message must not be acknowledged: wait for the broker.
                attempt += 1
                self._stalled(topic, partition, exc, attempt, offset)
                await asyncio.sleep(backoff(attempt, first=1.0, cap=self.settings.consumer_retry_max_backoff_s))
        if attempt:
            self._resumed(topic, partition, attempt, offset)
        self.metrics.dlq_messages.labels(self.service, topic).inc()
        log.error("sent message from %s[%s]@%s to %s: %s", topic, partition, offset, dlq(topic), error)


def topics_with_dlq(topics: Iterable[str]) -> list[str]:
    """Each topic and its dead-letter topic (for creating them up front)."""
    return [t for topic in topics for t in (topic, dlq(topic))]
