"""Tables of the export service: one job per export request."""

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from casebook_platform.db import new_metadata, platform_tables

metadata = new_metadata()
tables = platform_tables(metadata)

jobs = Table(
    "jobs", metadata,
    Column("id", String(40), primary_key=True),
    Column("requested_by", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", String(300), nullable=False),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("request", JSONB, nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_until", DateTime(timezone=True)),
    Column("object_key", String(300)),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    Column("expires_at", DateTime(timezone=True)),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Cases deleted so far: an export of one of them is never built, even when its request arrives late
# (a deletion is final).
deleted_cases = Table(
    "deleted_cases", metadata,
    Column("case_id", String(40), primary_key=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
