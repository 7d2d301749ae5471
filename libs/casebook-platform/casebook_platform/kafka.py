"""The Kafka broker, configured once for every service (acks=all, batching, Tansu's quirks)."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from casebook_platform.settings import CommonSettings


def make_broker(settings: CommonSettings, *, registry: CollectorRegistry | None = None) -> KafkaBroker:
    """A FastStream Kafka broker with the delivery settings of DESIGN.md.

    Idempotence is a setting: Apache Kafka supports it, Tansu rejects aiokafka's InitProducerId v0,
    so the embedded mode turns it off (effects stay effectively-once via the outbox and idempotent consumers).
    """
    middlewares = []
    if registry is not None:
        middlewares.append(KafkaPrometheusMiddleware(registry=registry, app_name=settings.service_name))
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_idempotent,
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=1024 * 1024,
        max_request_size=settings.kafka_max_request_size,
        client_id=f"casebook-{settings.service_name}",
        middlewares=middlewares,
        # On SIGTERM the broker stops fetching and waits this long for the message in hand to finish.
        graceful_timeout=settings.graceful_timeout_s,
        logger=None,
    )
