"""Typed dependencies of the gateway's routes: its settings and domain counters beside the platform's.

Routes name what they use (`settings: SettingsDep`, `domain: DomainDep`, `rt: RuntimeDep`) instead of
reaching into `request.app.state`, so a route's signature says what it depends on.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request

from casebook_gateway.metrics import DomainMetrics
from casebook_gateway.settings import Settings
from casebook_platform.deps import RuntimeDep, SessionDep


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


SettingsDep = Annotated[Settings, Depends(get_settings)]
HttpDep = Annotated[httpx.AsyncClient, Depends(get_http)]
DomainDep = Annotated[DomainMetrics, Depends(get_domain)]

__all__ = ["DomainDep", "HttpDep", "RuntimeDep", "SessionDep", "SettingsDep", "get_domain", "get_http", "get_settings"]
