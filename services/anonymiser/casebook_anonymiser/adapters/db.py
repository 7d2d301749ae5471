"""Tables of the anonymiser: one de-identification run per image."""

from sqlalchemy import BigInteger, Boolean, Column, DateTime, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB

from casebook_platform.db import new_metadata, platform_tables

metadata = new_metadata()
tables = platform_tables(metadata)

runs = Table(
    "runs", metadata,
    Column("image_id", String(40), primary_key=True),
    Column("case_id", String(40), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("actions", JSONB, nullable=False, server_default="[]"),
    Column("incoming_key", String(200), nullable=False),
    Column("object_key", String(200)),
    Column("size_in", BigInteger),
    Column("size_out", BigInteger),
    Column("key_id", String(40), nullable=False),
    Column("incoming_deleted", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
