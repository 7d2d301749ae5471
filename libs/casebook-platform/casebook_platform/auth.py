"""Bearer tokens: HS256 with a generated secret in embedded mode, RS256 against a JWKS URL in production."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

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


class TokenVerifier:
    """Verifies tokens; only the one configured algorithm is accepted (never `none`)."""

    def __init__(self, settings: CommonSettings) -> None:
        self.audience = settings.auth_audience or None
        self._jwks = jwt.PyJWKClient(settings.auth_jwks_url) if settings.auth_jwks_url else None
        self._secret = settings.auth_secret
        if self._jwks is None and not self._secret:
            raise ValueError("set CASEBOOK_AUTH_SECRET (embedded) or CASEBOOK_AUTH_JWKS_URL (production)")

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            ApiError: 401 `unauthenticated` for a missing, expired, malformed or wrongly signed token.
        """
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audience,
                                    options={"require": ["sub", "exp"]})
            else:
                claims = jwt.decode(token, self._secret, algorithms=["HS256"], audience=self.audience,
                                    options={"require": ["sub", "exp"]})
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
