"""Background job: raw uploads whose outcome is recorded but whose deletion did not happen (a crash between)."""

from __future__ import annotations

import asyncio
import logging

from casebook_anonymiser.metrics import DomainMetrics
from casebook_anonymiser.ports import Objects, SweptRuns

log = logging.getLogger(__name__)


async def sweep_once(*, objects: Objects, runs: SweptRuns, domain: DomainMetrics) -> int:
    """Delete the raw uploads left behind and record that they are gone; returns how many.

    Raises whatever the store or the database raises (the caller tries again later).
    """
    n = 0
    for image_id, key in await runs.raw_left():
        await objects.delete_raw(key)
        await runs.mark_raw_deleted(image_id)
        domain.swept.inc()
        n += 1
    return n


async def sweep_forever(*, objects: Objects, runs: SweptRuns, domain: DomainMetrics, interval_s: float) -> None:
    """Every `interval_s`, one sweep; a sweep that fails is logged and tried again at the next."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await sweep_once(objects=objects, runs=runs, domain=domain)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("sweep failed; trying again in %.0f s", interval_s, exc_info=True)
