"""Background job: raw uploads whose outcome is recorded but whose deletion did not happen (a crash between)."""

from __future__ import annotations

import asyncio
import logging

from casebook_anonymiser.adapters import runs
from casebook_anonymiser.metrics import DomainMetrics
from casebook_anonymiser.settings import Settings
from casebook_platform.service import Runtime

log = logging.getLogger(__name__)


async def sweep_forever(rt: Runtime, domain: DomainMetrics) -> None:
    """Every `sweep_interval_s`, delete the raw uploads left behind and record that they are gone."""
    settings: Settings = rt.settings  # type: ignore[assignment]
    while True:
        await asyncio.sleep(settings.sweep_interval_s)
        try:
            for image_id, key in await runs.raw_left(rt.db):
                await rt.storage.delete(rt.storage.incoming, key)
                await runs.mark_raw_deleted(rt.db, image_id)
                domain.swept.inc()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("sweep failed; trying again in %.0f s", settings.sweep_interval_s, exc_info=True)
