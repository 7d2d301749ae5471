"""Tables of the achievements service."""

from sqlalchemy import Boolean, Column, Integer, String, Table

from casebook_platform.db import new_metadata, platform_tables

metadata = new_metadata()
tables = platform_tables(metadata)

cases = Table(
    "collector_cases", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("owner_id", String(200), nullable=False, index=True),
    Column("public", Boolean, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Column("revision", Integer, nullable=False, server_default="0"),
)

awards = Table(
    "collector_awards", metadata,
    Column("user_id", String(200), primary_key=True),
    Column("awarded_level", Integer, nullable=False),
)
