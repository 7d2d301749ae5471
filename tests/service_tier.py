"""The service tier's harness: a service's real handlers and pure core on FastStream's in-memory broker.

Each test builds the service's handlers with its in-memory adapters (the same ports the PostgreSQL
adapters implement) and runs them under `MemoryConsumer`, the platform's consumer with its unit of work
in memory. Events go in as encoded envelopes on the topic the registry names, follow-up events and
dead letters come out on the broker; nothing starts a process, so a test takes milliseconds.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker
from pydantic import BaseModel

from casebook_events import Envelope, decode, dlq, encode, make_envelope
from casebook_events.topics import spec_for_model
from casebook_platform.consumer import EventConsumer, Handler
from casebook_platform.memory import MemoryConsumer, MemoryStore
from casebook_platform.settings import CommonSettings

AGAIN = "again"
"""A step of a scenario: deliver the envelope before it once more (as Kafka does after a rebalance)."""
Scenario = Sequence[BaseModel | str]
"""Events to deliver in order, with `AGAIN` for a redelivery."""

C = TypeVar("C", bound=EventConsumer)


def envelope_of(event: BaseModel, *, key: str | None = None) -> Envelope:
    """The event in its envelope, from its registered producer, keyed as the registry says (or by `key`)."""
    spec = spec_for_model(type(event))
    return make_envelope(event, producer=spec.producers[0], key=key or str(getattr(event, spec.key)))


async def drive(broker: KafkaBroker, scenario: Scenario) -> None:
    """Publish the scenario's events to their topics in order, each `AGAIN` redelivering the one before."""
    last: Envelope | None = None
    for step in scenario:
        if isinstance(step, BaseModel):
            last = envelope_of(step)
        assert last is not None and (step == AGAIN or isinstance(step, BaseModel)), f"{step!r}: AGAIN after an event"
        await broker.publish(encode(last), last.type, key=last.key.encode())


async def play(consumer_of: Callable[[KafkaBroker], C], scenario: Scenario) -> C:
    """Run a scenario through the consumer `consumer_of` builds on an in-memory broker; returns that consumer.

    The same scenario through `MemoryConsumer` and through the real `EventConsumer` on PostgreSQL is how the
    parity tests hold the service tier's fakes to the adapters production runs.
    """
    broker = KafkaBroker("in-memory:9092", logger=None)
    consumer = consumer_of(broker)
    consumer.subscribe()
    async with TestKafkaBroker(broker):
        await drive(broker, scenario)
    return consumer


@dataclass
class Running:
    """A service running in memory: send it events, read what it published."""

    broker: KafkaBroker
    consumer: MemoryConsumer
    received: dict[str, list[KafkaMessage]] = field(default_factory=lambda: defaultdict(list))

    async def send(self, event: BaseModel, *, key: str | None = None) -> Envelope:
        """Publish an event (in its envelope, from its registered producer) to its topic."""
        env = envelope_of(event, key=key)
        await self.redeliver(env)
        return env

    async def redeliver(self, env: Envelope) -> None:
        """Publish an envelope again, as Kafka does after a rebalance or a crash before the commit."""
        await self.broker.publish(encode(env), env.type, key=env.key.encode())

    async def send_raw(self, topic: str, raw: bytes) -> None:
        await self.broker.publish(raw, topic, key=b"k")

    def events(self, topic: str) -> list[Any]:
        """The events the service published on `topic`, as models."""
        return [decode(m.body).model() for m in self.received[topic]]

    def dead_letters(self, topic: str) -> list[KafkaMessage]:
        return self.received[dlq(topic)]


def _recorder(into: list[KafkaMessage]) -> Any:
    async def record(message: KafkaMessage) -> None:
        into.append(message)

    return record


@contextlib.asynccontextmanager
async def running(service: str, handlers: dict[str, Handler], *, stores: Sequence[MemoryStore] = (),
                  watch: Sequence[str] = ()) -> AsyncIterator[Running]:
    """Run `handlers` as `service` consumes them; `watch` lists topics whose messages the test reads."""
    settings = CommonSettings(service_name=service, consumer_retry_backoff_s=0.001, consumer_max_attempts=2)
    broker = KafkaBroker("in-memory:9092", logger=None)
    consumer = MemoryConsumer(settings=settings, broker=broker, handlers=handlers, stores=stores)
    consumer.subscribe()
    run = Running(broker, consumer)
    for topic in {*watch, *(dlq(t) for t in handlers)}:
        broker.subscriber(topic, group_id=f"test-reader-{topic}")(_recorder(run.received[topic]))
    async with TestKafkaBroker(broker):
        yield run
