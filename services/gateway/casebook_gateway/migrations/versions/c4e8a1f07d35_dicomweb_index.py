"""DICOMweb index of images: study, SOP and transfer syntax UIDs, the QIDO attributes, the header as DICOM JSON

Revision ID: c4e8a1f07d35
Revises: f1a6c3d9e2b7
Create Date: 2026-12-02 01:20:00

Existing rows need no data step here: every ready DICOM image has a null `dicom_state`, so the gateway's
indexer (`casebook_gateway.dicomindex`) reads each de-identified header once after the upgrade (the backfill)
just as it does for a newly ready image.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'c4e8a1f07d35'
down_revision: str | None = 'f1a6c3d9e2b7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("dicom_state", "study_uid", "sop_uid", "sop_class_uid", "transfer_syntax_uid", "dicom_attrs", "dicom_meta")


def upgrade() -> None:
    op.add_column('images', sa.Column('dicom_state', sa.String(length=16), nullable=True))
    for name in ("study_uid", "sop_uid", "sop_class_uid", "transfer_syntax_uid"):
        op.add_column('images', sa.Column(name, sa.String(length=64), nullable=True))
    op.add_column('images', sa.Column('dicom_attrs', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('images', sa.Column('dicom_meta', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index('ix_images_study_uid', 'images', ['study_uid'])
    op.create_index('ix_images_sop_uid', 'images', ['sop_uid'])
    op.create_index('ix_images_dicom_pending', 'images', ['seq'], postgresql_where=sa.text(
        "status = 'ready' AND media_type = 'application/dicom' AND dicom_state IS NULL"))


def downgrade() -> None:
    op.drop_index('ix_images_dicom_pending', table_name='images')
    op.drop_index('ix_images_sop_uid', table_name='images')
    op.drop_index('ix_images_study_uid', table_name='images')
    for name in reversed(_COLUMNS):
        op.drop_column('images', name)
