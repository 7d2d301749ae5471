"""Alembic, run programmatically: each service keeps its revisions, this runs them on start."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import async_engine_from_config


def alembic_config(script_location: Path, url: str) -> Config:
    """An Alembic config for a service's `migrations/` folder."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(script_location: Path, url: str) -> None:
    """Bring the database to the newest revision (idempotent; safe for concurrent replicas via a lock)."""
    await asyncio.to_thread(command.upgrade, alembic_config(script_location, url), "head")


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's `env.py`: online migrations over asyncpg, serialised by an advisory lock."""
    config = context.config

    def do_run(connection) -> None:  # type: ignore[no-untyped-def]
        from sqlalchemy import text

        # Two replicas starting together must not both migrate.
        connection.execute(text("SELECT pg_advisory_xact_lock(727274)"))
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = async_engine_from_config(config.get_section(config.config_ini_section) or {},
                                          prefix="sqlalchemy.", poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                          literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run())
