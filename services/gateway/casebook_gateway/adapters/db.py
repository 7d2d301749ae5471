"""Tables of the gateway: cases and their parts, playlists, export requests, history."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from casebook_platform.db import new_metadata, platform_tables

metadata = new_metadata()
tables = platform_tables(metadata)

cases = Table(
    "cases", metadata,
    Column("id", String(40), primary_key=True),
    Column("owner_id", String(200), nullable=False),
    Column("owner_name", String(200), nullable=False),
    Column("title", String(300), nullable=False),
    Column("presentation", Text, nullable=False, server_default=""),
    Column("patient_age", Integer),
    Column("patient_sex", String(16)),
    Column("systems", JSONB, nullable=False, server_default="[]"),
    Column("tags", JSONB, nullable=False, server_default="[]"),
    Column("diagnosis", Text, nullable=False, server_default=""),
    Column("diagnostic_certainty", String(32)),
    Column("discussion", Text, nullable=False, server_default=""),
    Column("visibility", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("share_token", String(64), unique=True),
    Column("listed_public", Boolean, nullable=False, server_default="false"),
    Column("public_snapshot", JSONB),
    Column("approved_at", DateTime(timezone=True)),
    Column("moderation_reasons", JSONB, nullable=False, server_default="[]"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_cases_owner_visibility", "owner_id", "visibility"),
    Index("ix_cases_listed", "listed_public", "approved_at"),
)

studies = Table(
    "studies", metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("modality", String(16), nullable=False),
    Column("findings", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

images = Table(
    "images", metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("study_id", String(40), ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("filename", String(255), nullable=False, server_default=""),
    Column("incoming_key", String(200), nullable=False),
    Column("object_key", String(200)),
    Column("media_type", String(64)),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    Column("modality", String(16)),
    Column("series_uid", String(128)),
    Column("series_number", Integer),
    Column("series_description", String(200)),
    Column("instance_number", Integer),
    Column("rows", Integer),
    Column("columns", Integer),
    Column("frames", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("seq", BigInteger, Identity(), nullable=False),
    # The DICOMweb index, read once from the de-identified header (`dicomindex.py`): null state = not yet
    # read; `indexed`, or `failed` (not DICOM enough to serve). attrs: the QIDO attributes as DICOM JSON;
    # meta: the whole header as DICOM JSON without bulk data.
    Column("dicom_state", String(16)),
    Column("study_uid", String(64)),
    Column("sop_uid", String(64)),
    Column("sop_class_uid", String(64)),
    Column("transfer_syntax_uid", String(64)),
    Column("dicom_attrs", JSONB),
    Column("dicom_meta", JSONB),
    Index("ix_images_study_uid", "study_uid"),
    Index("ix_images_sop_uid", "sop_uid"),
    Index("ix_images_dicom_pending", "seq", postgresql_where=text(
        "status = 'ready' AND media_type = 'application/dicom' AND dicom_state IS NULL")),
)

history = Table(
    "case_history", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("revision", Integer),
)

playlists = Table(
    "playlists", metadata,
    Column("id", String(40), primary_key=True),
    Column("owner_id", String(200), nullable=False, index=True),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("visibility", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

playlist_items = Table(
    "playlist_items", metadata,
    Column("playlist_id", String(40), ForeignKey("playlists.id", ondelete="CASCADE"), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False),
)

exports = Table(
    "export_requests", metadata,
    Column("id", String(40), primary_key=True),
    Column("requested_by", String(200), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("case_id", String(40)),
    Column("playlist_id", String(40)),
    Column("status", String(16), nullable=False),
    Column("object_key", String(300)),
    Column("expires_at", DateTime(timezone=True)),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Every case the archive holds (a playlist's presentation holds several): deleting one deletes the export.
    Column("case_ids", JSONB, nullable=False, server_default="[]"),
)

# One row per submission of a case, frozen when it was submitted: the text, the studies with their findings,
# the exact set of images, and what changed since the last approved revision. Approval publishes one of these.
revisions = Table(
    "case_revisions", metadata,
    Column("case_id", String(40), ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("n", Integer, primary_key=True),
    # submitted | approved | rejected | superseded | withdrawn (casebook_events.lifecycle.RevisionStatus)
    Column("status", String(16), nullable=False),
    Column("content", JSONB, nullable=False),
    Column("diff", JSONB, nullable=False, server_default="{}"),
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    Column("submitted_by", String(200), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("decided_by", String(200)),
    Column("decided_at", DateTime(timezone=True)),
)
