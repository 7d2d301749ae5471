"""Embedded mode only: mint a bearer token for a named local user, as `make token` does, so the console can sign in.

The router is included only when the gateway runs embedded with its generated HS256 secret; anywhere else the
path does not exist (404). Tokens are signed exactly like the launcher's (`deploy/local/embedded.py token`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Literal

import jwt
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from casebook_gateway.deps import SettingsDep
from casebook_gateway.settings import Settings

router = APIRouter(prefix="/v1/dev", tags=["embedded mode"])

TTL_S = 86_400
Role = Literal["contributor", "editor", "supporter"]


class DevTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                               description="The user id (`sub`).")]
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
                             description="Display name (default: the user id).")
    roles: list[Role] = Field(["contributor"], max_length=3, description="Roles of the token (not `admin`).")


class DevTokenOut(BaseModel):
    token: str
    user: str
    roles: list[str]
    expires_at: datetime


def enabled(settings: Settings) -> bool:
    """Only an embedded gateway that verifies its own HS256 tokens mints them."""
    return settings.mode == "embedded" and bool(settings.auth_secret) and not settings.auth_jwks_url


def token_for(body: DevTokenIn, settings: Settings, *, now: int) -> DevTokenOut:
    """A token for the named user, valid for `TTL_S` from `now`, signed with the gateway's own HS256 secret."""
    roles = sorted(set(body.roles))
    claims = {"sub": body.user, "name": body.name or body.user, "roles": roles, "iat": now, "exp": now + TTL_S}
    if settings.auth_issuer:
        claims["iss"] = settings.auth_issuer
    if settings.auth_audience:
        claims["aud"] = settings.auth_audience
    token = jwt.encode(claims, settings.auth_secret, algorithm="HS256")
    return DevTokenOut(token=token, user=body.user, roles=roles, expires_at=datetime.fromtimestamp(now + TTL_S, UTC))


@router.post("/tokens", response_model=DevTokenOut,
             summary="Embedded mode only: a token for a named local user (404 in production)")
async def mint_token(body: DevTokenIn, settings: SettingsDep) -> DevTokenOut:
    return token_for(body, settings, now=int(time.time()))
