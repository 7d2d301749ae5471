"""App factory of the anonymiser, and the one place its ports are wired to the object store, PostgreSQL and the pool."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from casebook_anonymiser.adapters.db import metadata, tables
from casebook_anonymiser.adapters.objects import StorageObjects
from casebook_anonymiser.adapters.runs import SqlRuns
from casebook_anonymiser.handlers import handlers
from casebook_anonymiser.metrics import DomainMetrics
from casebook_anonymiser.settings import Settings
from casebook_anonymiser.sweeper import sweep_forever
from casebook_anonymiser.worker import DeidPool
from casebook_platform import spool
from casebook_platform.consumer import Handler
from casebook_platform.service import Runtime, create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the process pool and clients open in the lifespan."""
    settings = settings or Settings()
    spool_base = settings.tmp_dir  # where this service's process directories go (`spool.private_dir`)
    workers = settings.deid_workers or os.cpu_count() or 1
    app: FastAPI

    def wired(rt: Runtime) -> dict[str, Handler]:
        # Before the first message: what a killed anonymiser left spooled is removed, and this one spools apart.
        settings.tmp_dir = str(spool.private_dir(spool_base, "anonymiser"))
        # Processes, not threads: de-identification and OCR are CPU-bound and must not stall heartbeats.
        pool = DeidPool(workers, timeout_s=settings.deid_timeout_s, stream_bytes=settings.deid_stream_bytes)
        app.state.pool = pool
        return handlers(objects=StorageObjects(rt.storage), runs=SqlRuns(rt.db), deidentifier=pool,
                        settings=settings, domain=app.state.domain)

    async def stop_pool(rt: Runtime) -> None:
        # After consuming stopped: no worker may outlive the service (nor the resource tracker they hold).
        pool: DeidPool | None = getattr(app.state, "pool", None)
        if pool is not None:
            pool.close()

    async def sweeper(rt: Runtime) -> None:
        await sweep_forever(objects=StorageObjects(rt.storage), runs=SqlRuns(rt.db), domain=app.state.domain,
                            interval_s=settings.sweep_interval_s)

    app = create_service_app(
        settings=settings, title="Casebook anonymiser",
        description="De-identifies every upload (DICOM PS3.15 Annex E, PNG/JPEG) before it is stored for serving.",
        metadata=metadata, tables=tables, migrations=Path(__file__).parent / "migrations",
        handlers=wired, background=[sweeper], on_stop=[stop_pool], verify_tokens=False,
        # Images are independent: handle several at once (S3 and the broker wait, the pool computes).
        consumer_concurrency=settings.deid_in_flight or max(4, workers * 4),
    )
    app.state.domain = DomainMetrics(app.state.metrics)
    return app
