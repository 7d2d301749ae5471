"""Domain counters of the moderation service."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import Counter

from casebook_platform.metrics import Metrics


@dataclass(frozen=True)
class ModerationMetrics:
    """Decisions taken, by outcome (rejections split into automatic and editor)."""

    approved: Counter
    rejected: Counter


@functools.cache
def domain_metrics(metrics: Metrics) -> ModerationMetrics:
    """The counters of one app's registry; cached because handlers and routes both need them and a
    Prometheus registry refuses the same name twice."""
    rejected = metrics.counter("casebook_cases_rejected_total", "Cases returned to their owner", ["kind"])
    for kind in ("automatic", "editor"):
        rejected.labels(kind)  # export zeroes before the first rejection, so rates start from a known value
    return ModerationMetrics(
        approved=metrics.counter("casebook_cases_approved_total", "Cases approved by an editor"),
        rejected=rejected,
    )
