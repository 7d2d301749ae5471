"""Bearer tokens: HS256 with a generated secret in embedded mode, RS256 against a JWKS URL in production."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from casebook_platform.errors import ApiError
from casebook_platform.settings import CommonSettings

ROLES = frozenset({"contributor", "editor", "supporter", "admin"})


@dataclass(frozen=True)
class Principal:
    """The caller, as the token says."""

    id: str
    name: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


class KeySet:
    """The signing keys of a JWKS URL, fetched on demand and at most once per `min_refetch_s`.

    An unknown `kid` triggers a refetch (key rotation), but a stream of tokens with made-up `kid`s
    must not turn the gateway into a load generator against the identity provider, nor stall it.
    """

    def __init__(self, url: str, *, min_refetch_s: float = 60.0, max_age_s: float = 3600.0) -> None:
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, cache_keys=False)
        self._min_refetch = min_refetch_s
        self._max_age = max_age_s
        self._keys: dict[str | None, Any] = {}
        self._fetched = float("-inf")
        self._lock = threading.Lock()
        self.fetches = 0

    def _refresh(self) -> None:
        self._fetched = time.monotonic()
        self.fetches += 1
        keys = {k.key_id: k.key for k in self._client.get_jwk_set().keys}
        if len(keys) == 1:
            keys[None] = next(iter(keys.values()))  # a token without `kid` may use the only key
        self._keys = keys

    def key_for(self, token: str) -> Any:
        """The key that should have signed `token`.

        Raises:
            jwt.PyJWTError: no such key (after at most one refetch within `min_refetch_s`).
        """
        kid = jwt.get_unverified_header(token).get("kid")
        with self._lock:
            age = time.monotonic() - self._fetched
            if age >= self._max_age or (kid not in self._keys and age >= self._min_refetch):
                self._refresh()
            if kid not in self._keys:
                raise jwt.InvalidKeyError(f"no signing key {kid!r} in the key set")
            return self._keys[kid]


class TokenVerifier:
    """Verifies tokens; only the one configured algorithm is accepted (never `none`).

    With a JWKS URL (production) `iss` and `aud` are required and must match the settings, so a token
    the same identity provider issued for another application is refused.
    """

    def __init__(self, settings: CommonSettings) -> None:
        self.audience = settings.auth_audience or None
        self.issuer = settings.auth_issuer or None
        self._jwks = (KeySet(settings.auth_jwks_url, min_refetch_s=settings.auth_jwks_min_refetch_s)
                      if settings.auth_jwks_url else None)
        self._secret = settings.auth_secret
        if self._jwks is None and not self._secret:
            raise ValueError("set CASEBOOK_AUTH_SECRET (embedded) or CASEBOOK_AUTH_JWKS_URL (production)")
        if self._jwks is not None and (self.audience is None or self.issuer is None):
            raise ValueError("a JWKS URL needs CASEBOOK_AUTH_ISSUER and CASEBOOK_AUTH_AUDIENCE")

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            ApiError: 401 `unauthenticated` for a missing, expired, malformed or wrongly signed token, or one
                of another issuer or audience.
        """
        required = ["sub", "exp"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        try:
            if self._jwks is not None:
                claims = jwt.decode(token, self._jwks.key_for(token), algorithms=["RS256"], audience=self.audience,
                                    issuer=self.issuer, options={"require": required})
            else:
                claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=self.audience,
                                    issuer=self.issuer, options={"require": required})
        except jwt.PyJWTError as exc:
            raise ApiError(401, "unauthenticated", f"invalid token: {exc}") from exc
        roles = claims.get("roles", [])
        if isinstance(roles, str):
            roles = roles.split(",")
        if not isinstance(roles, list) or not isinstance(claims["sub"], str) or not claims["sub"]:
            raise ApiError(401, "unauthenticated", "token claims are malformed")
        return Principal(id=claims["sub"], name=str(claims.get("name") or claims["sub"])[:200],
                         roles=frozenset(r for r in roles if r in ROLES))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def optional_principal(request: Request) -> Principal | None:
    token = _bearer(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(token)


def require_principal(request: Request) -> Principal:
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "unauthenticated", "a bearer token is required")
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(token)


CurrentUser = Annotated[Principal, Depends(require_principal)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]


def require_role(principal: Principal, role: str) -> None:
    """Raises ApiError 403 `role_required` unless the principal holds `role` (admins hold every role)."""
    if not principal.has(role):
        raise ApiError(403, "role_required", f"this action needs the `{role}` role")
