"""Idempotent event consumption: effect and processed-event record in one transaction, classified retries, DLQ."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.abc import ConsumerRebalanceListener
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


class InFlight:
    """At most `limit` messages handled at once, taken from as many fetched batches as it takes.

    A batch is handed over as soon as its last message has a slot, so the next fetch overlaps the work
    in hand instead of waiting for the batch's slowest message. The committed position of a partition
    never passes a message that is still being handled: it is the first unfinished offset, or one past
    the highest finished when none is unfinished. A message that fails is kept unfinished (its partition's
    position stays before it) and fetched again (`redeliver`). A partition taken away by a rebalance is
    forgotten: what its old tasks finish no longer moves any position.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._slots = asyncio.Semaphore(self.limit)
        self._pending: dict[tuple[str, int], dict[int, int]] = {}  # offset -> tasks handling it
        self._failed: dict[tuple[str, int], set[int]] = {}  # failed, not yet handled again
        self._finished: dict[tuple[str, int], int] = {}  # highest finished offset
        self._generation: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    @property
    def busy(self) -> int:
        return len(self.tasks)

    async def slot(self) -> None:
        await self._slots.acquire()

    def release(self) -> None:
        """Give back a slot that was not used."""
        self._slots.release()

    def begin(self, topic: str, partition: int, offset: int) -> int:
        """Record a message as being handled (after `slot`); returns its partition's generation."""
        tp = (topic, partition)
        pending = self._pending.setdefault(tp, {})
        pending[offset] = pending.get(offset, 0) + 1
        return self._generation.get(tp, 0)

    def end(self, topic: str, partition: int, offset: int, generation: int, *, ok: bool) -> None:
        """A message is done with (`ok`) or failed (kept unfinished until it is handled again)."""
        self._slots.release()
        tp = (topic, partition)
        if self._generation.get(tp, 0) != generation:
            return
        pending = self._pending.get(tp, {})
        left = pending.get(offset, 0) - 1
        if left <= 0:
            pending.pop(offset, None)
        else:
            pending[offset] = left
        if not ok:
            self._failed.setdefault(tp, set()).add(offset)
            return
        self._failed.get(tp, set()).discard(offset)
        self._finished[tp] = max(self._finished.get(tp, -1), offset)

    def forget(self, tps: Iterable[tuple[str, int]]) -> None:
        """Partitions revoked in a rebalance: their positions are another consumer's now."""
        for tp in tps:
            self._generation[tp] = self._generation.get(tp, 0) + 1
            self._pending.pop(tp, None)
            self._failed.pop(tp, None)
            self._finished.pop(tp, None)
            self._committed.pop(tp, None)

    def positions(self) -> dict[tuple[str, int], int]:
        """The offsets that may be committed now (only those that moved since the last commit)."""
        out: dict[tuple[str, int], int] = {}
        for tp in set(self._pending) | set(self._failed) | set(self._finished):
            unfinished = set(self._pending.get(tp, ())) | self._failed.get(tp, set())
            if unfinished:
                position = min(unfinished)
            elif tp in self._finished:
                position = self._finished[tp] + 1
            else:
                continue
            if position > self._committed.get(tp, -1):
                out[tp] = position
        return out

    def committed(self, positions: dict[tuple[str, int], int]) -> None:
        for tp, position in positions.items():
            self._committed[tp] = max(self._committed.get(tp, -1), position)


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
        self.window: InFlight | None = None  # with concurrency > 1: the messages in hand and their offsets
        self._commit_state = {"pending": 0, "last": time.monotonic()}

    @property
    def topics(self) -> list[str]:
        return sorted(self.handlers)

    def subscribe(self) -> None:
        """Register the subscriber with the broker (call before the broker starts)."""
        if not self.handlers:
            return
        s = self.settings

        commit = self._commit_state

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
            self.broker.subscriber(*self.topics, listener=_Rebalances(None, self.metrics, self.service),
                                   **common)(on_message)
            return

        # Independent events (one image each) are handled side by side, `concurrency` at a time, from as many
        # batches as it takes (`InFlight`); offsets are committed by `commit`, never past unfinished work.
        window = self.window = InFlight(self.concurrency)

        async def run(rec: Any, consumer: Any) -> None:
            generation = window.begin(rec.topic, rec.partition, rec.offset)
            ok = False
            try:
                await self.process(rec.topic, rec.value or b"", headers={k: v.decode() for k, v in rec.headers},
                                   partition=rec.partition, offset=rec.offset, key=rec.key)
                ok = True
            except asyncio.CancelledError:
                raise
            except BaseException:
                log.exception("handling %s[%s]@%s failed; it is fetched again", rec.topic, rec.partition, rec.offset)
                if not window.closed:
                    with contextlib.suppress(Exception):  # not ours any more after a rebalance: the new owner has it
                        rewind(consumer, [rec])
            finally:
                window.end(rec.topic, rec.partition, rec.offset, generation, ok=ok)
            if ok and (window.busy <= 1 or time.monotonic() - commit["last"] >= s.consumer_commit_interval_s):
                await self.commit(consumer)

        async def on_batch(msg: KafkaMessage) -> None:
            records: tuple[Any, ...] = msg.raw_message
            consumer = msg.consumer
            for i, rec in enumerate(records):
                await window.slot()
                if window.closed:  # stopping: what was not started is fetched again after the restart
                    window.release()
                    with contextlib.suppress(Exception):
                        rewind(consumer, records[i:])
                    return
                task = asyncio.create_task(run(rec, consumer), name=f"event-{rec.topic}-{rec.partition}-{rec.offset}")
                window.tasks.add(task)
                task.add_done_callback(window.tasks.discard)

        self.broker.subscriber(*self.topics, batch=True, max_records=self.concurrency * 2,
                               batch_timeout_ms=s.consumer_poll_ms,
                               listener=_Rebalances(window, self.metrics, self.service), **common)(on_batch)

    async def commit(self, consumer: Any) -> None:
        """Commit each partition's position up to its first unfinished message (windowed mode)."""
        window = self.window
        if window is None:
            return
        from aiokafka import TopicPartition
        from aiokafka.structs import OffsetAndMetadata

        positions = window.positions()
        assigned = consumer.assignment() if hasattr(consumer, "assignment") else set()
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in positions.items()
                   if TopicPartition(t, p) in assigned}
        self._commit_state["last"] = time.monotonic()
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - a rebalance or broker hiccup: the next commit carries it
            log.info("offset commit deferred: %s", exc)
            return
        window.committed({(tp.topic, tp.partition): om.offset for tp, om in offsets.items()})

    async def drain(self, timeout: float) -> None:
        """Stop taking messages, let those in hand finish (up to `timeout`), commit what is done.

        Called before the broker stops; what does not finish in time is cancelled and fetched again later.
        """
        window = self.window
        if window is None:
            return
        window.closed = True
        tasks = list(window.tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for sub in self.broker.subscribers:
            consumer = getattr(sub, "consumer", None)
            if consumer is not None:
                await self.commit(consumer)

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


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Rebalance listener: partitions taken from this consumer are forgotten by its window (when it has one);
    the partitions held are shown in `casebook_consumer_assigned_partitions` (replicas share a group)."""

    def __init__(self, window: InFlight | None, metrics: Metrics, service: str) -> None:
        self.window = window
        self.metrics = metrics
        self.service = service

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        revoked = list(revoked)
        if self.window is not None:
            self.window.forget((tp.topic, tp.partition) for tp in revoked)
        for tp in revoked:
            self.metrics.consumer_assigned.labels(self.service, tp.topic, str(tp.partition)).set(0)

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        for tp in assigned:
            self.metrics.consumer_assigned.labels(self.service, tp.topic, str(tp.partition)).set(1)


def topics_with_dlq(topics: Iterable[str]) -> list[str]:
    """Each topic and its dead-letter topic (for creating them up front)."""
    return [t for topic in topics for t in (topic, dlq(topic))]
