"""Typed dependencies of the gateway's routes: its database, outbox, objects, settings and counters.

Routes name what they use (`db: DatabaseDep`, `outbox: OutboxDep`, `objects: ImageObjectsDep`,
`settings: SettingsDep`) instead of reaching into `request.app.state` or the whole `Runtime`, so a route's
signature says what it depends on and a test can override each one. Routes open their sessions from
`DatabaseDep` themselves: a write has committed before its response is sent, and a read that streams its
answer (DICOMweb) does not hold a pooled connection until the last byte is sent, as a `SessionDep` would.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request

from casebook_gateway.adapters.objects import StoredImages
from casebook_gateway.metrics import DomainMetrics
from casebook_gateway.ports import ImageObjects, Outbox
from casebook_gateway.settings import Settings
from casebook_platform.db import Database
from casebook_platform.deps import RuntimeDep, SessionDep
from casebook_platform.storage import Storage


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_domain(request: Request) -> DomainMetrics:
    domain: DomainMetrics = request.app.state.domain
    return domain


def get_http(request: Request) -> httpx.AsyncClient:
    """The client the gateway calls the services behind it with (opened by the lifespan)."""
    client: httpx.AsyncClient = request.app.state.http
    return client


def get_database(rt: RuntimeDep) -> Database:
    """The service's database, for a route that scopes its own sessions."""
    return rt.db


def get_storage(rt: RuntimeDep) -> Storage:
    """The object store (its buckets: `incoming`, `images`, `exports`)."""
    return rt.storage


def get_image_objects(rt: RuntimeDep) -> ImageObjects:
    """A case's objects (de-identified images and reports, raw uploads) on the object store."""
    return StoredImages(rt.storage)


def get_outbox(rt: RuntimeDep) -> Outbox:
    """Where a route writes its events, in its own transaction."""
    return rt


SettingsDep = Annotated[Settings, Depends(get_settings)]
HttpDep = Annotated[httpx.AsyncClient, Depends(get_http)]
DomainDep = Annotated[DomainMetrics, Depends(get_domain)]
DatabaseDep = Annotated[Database, Depends(get_database)]
StorageDep = Annotated[Storage, Depends(get_storage)]
ImageObjectsDep = Annotated[ImageObjects, Depends(get_image_objects)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]

__all__ = ["DatabaseDep", "DomainDep", "HttpDep", "ImageObjectsDep", "OutboxDep", "RuntimeDep", "SessionDep",
           "SettingsDep", "StorageDep", "get_database", "get_domain", "get_http", "get_image_objects", "get_outbox",
           "get_settings", "get_storage"]
