"""submission diff; what the image-quality checks need

Revision ID: d5a2b8c1e3f4
Revises: 629cda88f122
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'd5a2b8c1e3f4'
down_revision: str | None = '629cda88f122'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('moderation_items', sa.Column('diff', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('moderation_items', sa.Column('advice', postgresql.JSONB(astext_type=sa.Text()),
                                                server_default='[]', nullable=False))
    op.add_column('moderation_images', sa.Column('study_id', sa.String(length=64), nullable=True))
    op.add_column('moderation_images', sa.Column('modality', sa.String(length=16), nullable=True))
    op.add_column('moderation_images', sa.Column('series_uid', sa.String(length=128), nullable=True))
    op.add_column('moderation_images', sa.Column('rows', sa.Integer(), nullable=True))
    op.add_column('moderation_images', sa.Column('columns', sa.Integer(), nullable=True))
    op.add_column('moderation_images', sa.Column('frames', sa.Integer(), nullable=True))


def downgrade() -> None:
    for col in ('frames', 'columns', 'rows', 'series_uid', 'modality', 'study_id'):
        op.drop_column('moderation_images', col)
    op.drop_column('moderation_items', 'advice')
    op.drop_column('moderation_items', 'diff')
