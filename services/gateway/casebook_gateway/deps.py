"""Typed dependencies of the gateway's routes: its settings and domain counters beside the platform's.

Routes name what they use (`settings: SettingsDep`, `domain: DomainDep`, `rt: RuntimeDep`) instead of
reaching into `request.app.state`, so a route's signature says what it depends on. Routes that read before
streaming their answer (DICOMweb) take `DatabaseDep` and open their read sessions themselves: a `SessionDep`
is closed only after the response, so it would hold a pooled connection until the last byte is sent.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request

from casebook_gateway.metrics import DomainMetrics
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


SettingsDep = Annotated[Settings, Depends(get_settings)]
HttpDep = Annotated[httpx.AsyncClient, Depends(get_http)]
DomainDep = Annotated[DomainMetrics, Depends(get_domain)]
DatabaseDep = Annotated[Database, Depends(get_database)]
StorageDep = Annotated[Storage, Depends(get_storage)]

__all__ = ["DatabaseDep", "DomainDep", "HttpDep", "RuntimeDep", "SessionDep", "SettingsDep", "StorageDep",
           "get_database", "get_domain", "get_http", "get_settings", "get_storage"]
