"""Fixtures shared by the end-to-end and security tiers: users talking to the running platform."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from client import User


@pytest.fixture
def users(platform: Any, tokens: Any) -> Any:
    """`users(role_string)` → a fresh User with a unique id."""
    base = platform["gateway"].url
    made: list[User] = []

    def make(roles: str = "contributor", name: str | None = None) -> User:
        uid = f"u{uuid.uuid4().hex[:10]}"
        u = User(base, tokens(uid, roles, name or f"Dr {uid}"))
        u.id = uid  # type: ignore[attr-defined]
        made.append(u)
        return u

    yield make
    for u in made:
        u.http.close()


@pytest.fixture
def anonymous(platform: Any) -> User:
    return User(platform["gateway"].url, None)
