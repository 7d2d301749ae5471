"""The wiring every service shares: database, migrations, broker, outbox relay, consumer, HTTP basics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casebook_events import Envelope, make_envelope
from casebook_platform.auth import TokenVerifier
from casebook_platform.consumer import EventConsumer, Handler
from casebook_platform.db import Database, PlatformTables
from casebook_platform.errors import install_error_handlers
from casebook_platform.kafka import make_broker
from casebook_platform.logs import bind_request, configure_logging
from casebook_platform.metrics import Metrics
from casebook_platform.migrations import upgrade
from casebook_platform.outbox import OutboxRelay, enqueue
from casebook_platform.settings import CommonSettings
from casebook_platform.storage import Storage

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """A running service's resources, handed to its routes and handlers."""

    settings: CommonSettings
    metrics: Metrics
    db: Database
    tables: PlatformTables
    broker: KafkaBroker
    storage: Storage
    relay: OutboxRelay
    consumer: EventConsumer | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def emit(self, session: AsyncSession, event: BaseModel, *, key: str) -> Envelope:
        """Write an event into the outbox within the caller's transaction."""
        env = make_envelope(event, producer=self.settings.service_name, key=key)
        await enqueue(session, self.tables, env)
        return env


HandlersFactory = Callable[[Runtime], dict[str, Handler]]
Hook = Callable[[Runtime], Awaitable[None]]


def create_service_app(
    *,
    settings: CommonSettings,
    title: str,
    description: str,
    metadata: MetaData,
    tables: PlatformTables,
    migrations: Path,
    handlers: HandlersFactory | None = None,
    routers: Sequence[APIRouter] = (),
    on_start: Sequence[Hook] = (),
    on_stop: Sequence[Hook] = (),
    background: Sequence[Callable[[Runtime], Coroutine[Any, Any, None]]] = (),
    verify_tokens: bool = True,
    consumer_concurrency: int = 1,
) -> FastAPI:
    """Build a service's FastAPI app; nothing is opened until the lifespan starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level)
        metrics: Metrics = app.state.metrics
        db = Database(settings.database_url, pool_size=settings.database_pool_size,
                      connect_timeout=settings.database_connect_timeout_s,
                      command_timeout=settings.database_command_timeout_s)
        await _retry("database migrations", lambda: upgrade(migrations, settings.database_url))
        storage = Storage(settings)
        if settings.mode == "embedded":
            # In production the operator provisions buckets, and a service's credentials may not list them.
            await _retry("object store", storage.ensure_buckets)
        broker = make_broker(settings, registry=metrics.registry)
        relay = OutboxRelay(sessions=db.sessions, tables=tables, broker=broker, metrics=metrics,
                            poll_interval=settings.outbox_poll_interval_s,
                            gauge_interval=settings.outbox_gauge_interval_s)
        rt = Runtime(settings=settings, metrics=metrics, db=db, tables=tables, broker=broker, storage=storage,
                     relay=relay)
        if handlers is not None:
            rt.consumer = EventConsumer(settings=settings, broker=broker, db=db, tables=tables, metrics=metrics,
                                        relay=relay, handlers=handlers(rt), concurrency=consumer_concurrency)
            rt.consumer.subscribe()
        app.state.runtime = rt
        for hook in on_start:
            await hook(rt)
        try:
            await _retry("broker", broker.start, timeout=15)
        except Exception:  # noqa: BLE001 - serve without it: the outbox buffers, consumers start once it is back
            log.warning("broker unreachable at start; serving without it and connecting in the background")
            rt.tasks.append(asyncio.create_task(_retry("broker", broker.start, timeout=float("inf")),
                                                name="broker-connect"))
        rt.tasks.append(asyncio.create_task(relay.run(), name="outbox-relay"))
        for job in background:
            rt.tasks.append(asyncio.create_task(job(rt), name=getattr(job, "__name__", "job")))
        log.info("%s started", settings.service_name)
        try:
            yield
        finally:
            # Graceful: stop consuming (in-flight work finishes and commits), then relay what is left.
            if rt.consumer is not None:
                await rt.consumer.drain(settings.graceful_timeout_s)
            await broker.stop()
            for hook in on_stop:
                try:
                    await hook(rt)
                except Exception:  # one failing hook must not keep the others from running
                    log.warning("shutdown hook failed", exc_info=True)
            relay.stop()
            for t in rt.tasks:
                t.cancel()
            await asyncio.gather(*rt.tasks, return_exceptions=True)
            await db.dispose()
            log.info("%s stopped", settings.service_name)

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = Metrics(settings.service_name)
    # The handlers factory, so that a test can hold what the service subscribes to against the registry.
    app.state.handlers = handlers
    if verify_tokens:
        app.state.verifier = TokenVerifier(settings)
    install_error_handlers(app)
    app.add_middleware(RequestMetrics)
    app.include_router(_ops_router())
    for r in routers:
        app.include_router(r)
    return app


async def _retry(what: str, fn: Callable[[], Awaitable[Any]], timeout: float = 120) -> Any:
    """Dependencies may start after us (Kubernetes, the embedded launcher): wait for them, then give up."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            return await fn()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for %s: %s", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)


class RequestMetrics:
    """Counts and times every HTTP request by its route template, and gives each a request id.

    A plain ASGI middleware: Starlette's `@app.middleware("http")` runs the app in a task of its own and passes every
    response body chunk through a memory stream.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex
        bind_request(request_id)
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            m: Metrics = scope["app"].state.metrics
            m.http_requests.labels(m.service, scope["method"], path, str(status)).inc()
            m.http_duration.labels(m.service, scope["method"], path).observe(time.perf_counter() - started)


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Can this replica serve? Each dependency's state is named in the body")
    async def readyz(request: Request) -> JSONResponse:
        rt: Runtime | None = getattr(request.app.state, "runtime", None)
        if rt is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        return await readiness(rt)

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        rt: Runtime | None = getattr(request.app.state, "runtime", None)
        m: Metrics = request.app.state.metrics
        if rt is not None:
            with contextlib.suppress(Exception):
                await rt.relay.refresh_gauges()
        return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return router


async def readiness(rt: Runtime) -> JSONResponse:
    """Ready means "can serve": only the dependencies in `readiness_requires` (the database by default) decide.

    A broker outage does not take a replica out of rotation: events wait in the outbox and consumers
    wait where they are; the body says so (`checks`, `outbox`, `consumer`), and so do the metrics.
    """
    async def bounded(check: Awaitable[bool]) -> bool:
        try:
            return await asyncio.wait_for(check, timeout=3.0)
        except TimeoutError:
            return False

    db_ok, s3_ok, kafka_ok = await asyncio.gather(bounded(rt.db.ping()), bounded(rt.storage.ping()),
                                                  bounded(_kafka_ping(rt.broker)))
    checks = {"database": db_ok, "object_store": s3_ok, "broker": kafka_ok}
    required = [r.strip() for r in rt.settings.readiness_requires.split(",") if r.strip() in checks]
    ok = all(checks[r] for r in required)
    body: dict[str, Any] = {
        "status": ("ready" if all(checks.values()) else "degraded") if ok else "not_ready",
        "checks": {k: "up" if v else "down" for k, v in checks.items()},
        "required": required,
    }
    relay = rt.relay
    outbox: dict[str, Any] = {"relay": "failing" if relay.failing_since is not None else "ok"}
    if relay.failing_since is not None:
        outbox["failing_for_s"] = round(time.monotonic() - relay.failing_since, 1)
        outbox["last_error"] = relay.last_error
    if db_ok:
        with contextlib.suppress(Exception):
            outbox["backlog"], outbox["parked"] = await asyncio.wait_for(
                asyncio.gather(relay.backlog(), relay.parked()), timeout=3.0)
    body["outbox"] = outbox
    if rt.consumer is not None:
        stalls = [st.describe() for st in list(rt.consumer.stalls.values())]
        body["consumer"] = {"state": "waiting" if stalls else "running", "stalled_partitions": stalls}
    return JSONResponse(body, status_code=200 if ok else 503)


async def _kafka_ping(broker: KafkaBroker) -> bool:
    try:
        return bool(await broker.ping(timeout=2.0))
    except Exception:  # noqa: BLE001 - readiness reports any failure as "not ready"
        return False


def serve(app_factory: Callable[[], FastAPI], settings: CommonSettings) -> None:
    """Run a service with uvicorn; SIGTERM drains HTTP, then the lifespan stops consuming and commits."""
    import uvicorn

    uvicorn.run(app_factory(), host=settings.http_host, port=settings.http_port, log_config=None, http="httptools",
                timeout_graceful_shutdown=30, access_log=False)
