"""deleted cases (their exports are removed and never built)

Revision ID: c3e9f0a7b215
Revises: a8c0abaffc97
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3e9f0a7b215'
down_revision: str | None = 'a8c0abaffc97'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('deleted_cases',
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_deleted_cases'))
    )


def downgrade() -> None:
    op.drop_table('deleted_cases')
