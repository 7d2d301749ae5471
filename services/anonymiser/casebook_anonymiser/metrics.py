"""Domain metrics of the anonymiser."""

from __future__ import annotations

from prometheus_client import Histogram

from casebook_platform.metrics import Metrics


class DomainMetrics:
    def __init__(self, m: Metrics) -> None:
        self.deidentified = m.counter("casebook_images_deidentified_total", "Images de-identified and stored")
        self.quarantined = m.counter("casebook_images_quarantined_total", "Images quarantined", ["reason"])
        self.seconds = Histogram("casebook_deid_seconds", "Time to de-identify one object", registry=m.registry,
                                 buckets=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30))
        self.swept = m.counter("casebook_incoming_swept_total", "Leftover raw uploads removed by the sweeper")
