"""The database: one async engine per service, and the platform tables every service carries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, DateTime, Identity, Integer, LargeBinary, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A MetaData with stable constraint names (so migrations stay reproducible)."""
    return MetaData(naming_convention=NAMING)


@dataclass(frozen=True)
class PlatformTables:
    """The outbox (events waiting to be relayed) and the record of processed events."""

    outbox: Table
    processed: Table


def platform_tables(metadata: MetaData) -> PlatformTables:
    """Add the outbox and processed-events tables to a service's metadata."""
    outbox = Table(
        "outbox", metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False, server_default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("attempts", Integer, nullable=False, server_default="0"),
    )
    processed = Table(
        "processed_events", metadata,
        Column("event_id", String(64), primary_key=True),
        Column("topic", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return PlatformTables(outbox=outbox, processed=processed)


class Database:
    """The engine and session factory of one service's database."""

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 10.0,
                 command_timeout: float | None = 60.0) -> None:
        # Time bounds matter when the server stalls (not down, just silent): without them a call waits for
        # ever instead of failing and being retried.
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_timeout=30,
            connect_args={"timeout": connect_timeout, "command_timeout": command_timeout})
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        """True when the database answers."""
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - readiness reports any failure as "not ready"
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
