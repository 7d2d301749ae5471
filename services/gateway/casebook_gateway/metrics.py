"""Domain counters of the gateway."""

from __future__ import annotations

import functools

from casebook_platform.metrics import Metrics


class DomainMetrics:
    """What operators watch besides requests: uploads, outcomes of de-identification, export requests."""

    def __init__(self, m: Metrics) -> None:
        self.uploads = m.counter("casebook_uploads_total", "Images accepted for de-identification")
        self.images_ready = m.counter("casebook_gateway_images_ready_total", "Images that became ready")
        self.images_quarantined = m.counter("casebook_gateway_images_quarantined_total", "Images quarantined",
                                            ["reason"])
        self.exports_requested = m.counter("casebook_exports_requested_total", "Exports requested", ["kind"])
        self.cases_created = m.counter("casebook_cases_created_total", "Cases created")


@functools.cache
def domain_metrics(m: Metrics) -> DomainMetrics:
    """The counters of one app's registry, for its routes and its handlers alike (cached: a Prometheus registry
    refuses the same name twice)."""
    return DomainMetrics(m)
