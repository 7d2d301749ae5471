"""Typed dependencies of the services' routes: the running service's resources and a read session.

Reads take `SessionDep`; a write opens `rt.db.transaction()` itself (from `RuntimeDep`) so that it has
committed before the response is sent and the outbox relay is nudged after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from casebook_platform.service import Runtime


def get_runtime(request: Request) -> Runtime:
    """The service's resources, opened by its lifespan (which completes before any request is served)."""
    rt: Runtime = request.app.state.runtime
    return rt


async def read_session(rt: Annotated[Runtime, Depends(get_runtime)]) -> AsyncIterator[AsyncSession]:
    """A database session for the reads of one request, closed when the request ends."""
    async with rt.db.sessions() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[AsyncSession, Depends(read_session)]
