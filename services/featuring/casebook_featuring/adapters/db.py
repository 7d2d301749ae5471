"""Tables of the featuring service."""

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Table

from casebook_platform.db import new_metadata, platform_tables

metadata = new_metadata()
tables = platform_tables(metadata)

# Every case moderation approved, as featuring knows it. A row may first appear from a deletion or a
# de-listing (events of different topics are not ordered), with no approval yet; such rows are never listed.
cases = Table(
    "featuring_cases", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("owner_id", String(200), nullable=False),
    Column("title", String(500), nullable=False, server_default=""),
    Column("revision", Integer, nullable=False, server_default="0"),
    Column("approved_at", DateTime(timezone=True), nullable=True),
    Column("listed", Boolean, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="false"),
    Index("ix_featuring_cases_approved_at", "approved_at", "case_id"),
)

# The current featured list; a case leaves it when it is deleted or no longer listed as public.
featured = Table(
    "featured_cases", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("title", String(500), nullable=False),
    Column("featured_at", DateTime(timezone=True), nullable=False),
    Column("featured_by", String(200), nullable=False),
    Index("ix_featured_cases_featured_at", "featured_at", "case_id"),
)

# One pick per month; history: a pick stays even when its case is later deleted.
months = Table(
    "case_of_the_month", metadata,
    Column("month", String(7), primary_key=True),
    Column("case_id", String(64), nullable=False),
    Column("title", String(500), nullable=False),
    Column("approved_at", DateTime(timezone=True), nullable=False),
    Column("picked_by", String(200), nullable=False),
    Column("picked_at", DateTime(timezone=True), nullable=False),
)
