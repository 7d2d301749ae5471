"""Tables of the moderation service."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB

from casebook_platform.db import new_metadata, platform_tables

metadata = new_metadata()
tables = platform_tables(metadata)

# One row per case ever submitted (or deleted/withdrawn before its submission arrived): the newest submitted
# revision, its checks and where it stands. Rows are kept after a decision so stale events can be recognised.
items = Table(
    "moderation_items", metadata,
    Column("case_id", String(64), primary_key=True),
    Column("owner_id", String(200), nullable=False),
    Column("owner_name", String(200), nullable=False, server_default=""),
    Column("title", String(500), nullable=False, server_default=""),
    # 0 for a row that only records a deletion or withdrawal seen before any submission.
    Column("revision", Integer, nullable=False),
    # A submission older than this revision was withdrawn (the owner changed the case back) and stays out.
    Column("withdrawn_revision", Integer, nullable=False, server_default="0"),
    # checking | waiting | approved | rejected | withdrawn | deleted
    Column("state", String(16), nullable=False),
    Column("snapshot", JSONB, nullable=False, server_default="{}"),
    Column("image_ids", JSONB, nullable=False, server_default="[]"),
    Column("checks", JSONB, nullable=False, server_default="[]"),
    # What the submission changes against the last approved revision (the gateway's diff), when it said.
    Column("diff", JSONB),
    # Advisory image-quality findings (core.quality_advice): shown, never a reason to reject on their own.
    Column("advice", JSONB, nullable=False, server_default="[]"),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("claimed_by", String(200), nullable=True),
    Column("claim_expires_at", DateTime(timezone=True), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Index("ix_moderation_items_state_submitted", "state", "submitted_at", "case_id"),
)

# What the anonymiser reported per image; images may be reported before their case is submitted.
images = Table(
    "moderation_images", metadata,
    Column("case_id", String(64), nullable=False),
    Column("image_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("flags", JSONB, nullable=False, server_default="[]"),
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("identifier_digests", JSONB, nullable=False, server_default="[]"),
    # What the advisory image-quality checks look at.
    Column("study_id", String(64)),
    Column("modality", String(16)),
    Column("series_uid", String(128)),
    Column("rows", Integer),
    Column("columns", Integer),
    Column("frames", Integer),
    PrimaryKeyConstraint("case_id", "image_id"),
)

# Every decision, automatic or by an editor (the audit trail of the queue).
decisions = Table(
    "moderation_decisions", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("case_id", String(64), nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("automatic", Boolean, nullable=False),
    Column("editor_id", String(200), nullable=True),
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("decided_at", DateTime(timezone=True), nullable=False),
)
