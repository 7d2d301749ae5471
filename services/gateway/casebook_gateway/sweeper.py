"""Background job: uploads a crash left between recording their images as `receiving` and handing them over."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from casebook_gateway.adapters import imagestore
from casebook_platform.db import Database
from casebook_platform.storage import Storage

log = logging.getLogger(__name__)


async def sweep_once(*, db: Database, storage: Storage, stale_s: float) -> int:
    """Remove the raw objects and rows of images still `receiving` after `stale_s` seconds; returns how many.

    Raises whatever the store or the database raises (the caller tries again later).
    """
    cutoff = datetime.now(UTC) - timedelta(seconds=stale_s)
    async with db.sessions() as session:
        stale = await imagestore.stale_receiving(session, cutoff)
    for row in stale:
        await storage.delete(storage.incoming, row.incoming_key)  # absent objects are fine
        async with db.transaction() as session:
            await imagestore.delete_receiving(session, row.id)
    return len(stale)


async def sweep_forever(*, db: Database, storage: Storage, interval_s: float, stale_s: float) -> None:
    """Every `interval_s`, one sweep; a sweep that fails is logged and tried again at the next."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await sweep_once(db=db, storage=storage, stale_s=stale_s)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("upload sweep failed", exc_info=True)
