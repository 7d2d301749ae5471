"""Prometheus metrics: one registry per app, shared platform metrics, and room for domain counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """The platform's metrics for one service; services add their own counters to `registry`."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("casebook_http_requests_total", "HTTP requests",
                                     ["service", "method", "route", "status"], registry=r)
        self.http_duration = Histogram("casebook_http_request_duration_seconds", "HTTP request duration",
                                       ["service", "method", "route"], registry=r)
        self.outbox_backlog = Gauge("casebook_outbox_backlog", "Events waiting in the outbox", ["service"], registry=r)
        self.outbox_published = Counter("casebook_outbox_published_total", "Events relayed from the outbox",
                                        ["service", "topic"], registry=r)
        self.events_processed = Counter("casebook_events_processed_total", "Events consumed with their effect applied",
                                        ["service", "topic"], registry=r)
        self.events_duplicate = Counter("casebook_events_duplicate_total", "Redelivered events skipped",
                                        ["service", "topic"], registry=r)
        self.event_retries = Counter("casebook_event_retries_total", "Handler attempts that failed and were retried",
                                     ["service", "topic"], registry=r)
        self.consumer_stalled = Gauge(
            "casebook_consumer_stalled", "1 while a partition waits for a dependency (retried, never dead-lettered)",
            ["service", "topic", "partition"], registry=r)
        self.consumer_assigned = Gauge(
            "casebook_consumer_assigned_partitions", "1 for each partition this replica's consumer group member holds",
            ["service", "topic", "partition"], registry=r)
        self.outbox_parked = Gauge("casebook_outbox_parked", "Outbox rows the broker refused for good (parked)",
                                   ["service"], registry=r)
        self.outbox_parked_total = Counter("casebook_outbox_rows_parked_total", "Outbox rows parked (since start)",
                                           ["service", "topic", "reason"], registry=r)
        self.dlq_messages = Counter("casebook_dlq_messages_total", "Messages sent to a dead-letter topic",
                                    ["service", "topic"], registry=r)

    def counter(self, name: str, doc: str, labels: list[str] | None = None) -> Counter:
        """A domain counter in this service's registry."""
        return Counter(name, doc, labels or [], registry=self.registry)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
