"""Domain metrics of the export service."""

from casebook_platform.metrics import Metrics


class DomainMetrics:
    def __init__(self, m: Metrics) -> None:
        self.built = m.counter("casebook_exports_built_total", "Export archives built", ["kind"])
