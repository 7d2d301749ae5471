"""Each service subscribes to exactly the topics the registry says it consumes, no more and no fewer.

Every app is built by its own factory and its consumer subscribed on a broker that is never connected:
the subscriptions are read off the FastStream broker, the way the running service registers them.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi import FastAPI

from casebook_events import TOPICS
from casebook_events.topics import consumed_by
from casebook_platform.asyncapi import SERVICES
from casebook_platform.consumer import EventConsumer
from casebook_platform.db import Database
from casebook_platform.kafka import make_broker
from casebook_platform.outbox import OutboxRelay
from casebook_platform.service import Runtime
from casebook_platform.storage import Storage


def _subscribed(service: str) -> tuple[set[str], set[str]]:
    """(topics the service's FastStream subscribers listen on, their consumer groups)."""
    main = importlib.import_module(f"casebook_{service}.main")
    settings = importlib.import_module(f"casebook_{service}.settings").Settings(
        auth_secret="x" * 32, deid_secret="y" * 32)
    app: FastAPI = main.create_app(settings)
    factory = app.state.handlers
    if factory is None:
        return set(), set()
    tables = importlib.import_module(f"casebook_{service}.adapters.db").tables
    broker = make_broker(settings)
    db = Database(settings.database_url)  # an engine only: nothing connects until a query runs
    rt = Runtime(settings=settings, metrics=app.state.metrics, db=db, tables=tables, broker=broker,
                 storage=Storage(settings), relay=OutboxRelay(sessions=db.sessions, tables=tables, broker=broker,
                                                              metrics=app.state.metrics))
    try:
        consumer = EventConsumer(settings=settings, broker=broker, db=db, tables=tables, metrics=app.state.metrics,
                                 relay=rt.relay, handlers=factory(rt))
        consumer.subscribe()
    finally:
        # The anonymiser's worker pool starts no process before work arrives; release it all the same.
        pool: Any = getattr(app.state, "pool", None)
        if pool is not None:
            (pool.close if hasattr(pool, "close") else pool.shutdown)()
    subscribers: list[Any] = list(broker.subscribers)
    topics = {t.name if hasattr(t, "name") else str(t) for s in subscribers for t in s.topics}
    groups = {s.group_id for s in subscribers}
    return topics, groups


@pytest.mark.parametrize("service", SERVICES)
def test_subscribers_equal_the_registry_consumers(service: str) -> None:
    topics, groups = _subscribed(service)
    wanted = set(consumed_by(service))
    assert topics == wanted, (
        f"{service} subscribes to {sorted(topics)} but the registry (casebook_events.topics) lists it as a "
        f"consumer of {sorted(wanted)}: missing {sorted(wanted - topics)}, not registered {sorted(topics - wanted)}")
    assert groups <= {f"casebook-{service}"}


def test_every_registered_consumer_is_a_service() -> None:
    assert {c for t in TOPICS for c in t.consumers} <= set(SERVICES)
    assert {p for t in TOPICS for p in t.producers} <= set(SERVICES)
