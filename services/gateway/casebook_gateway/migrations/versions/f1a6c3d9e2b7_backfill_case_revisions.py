"""backfill case revisions for cases submitted or approved before revisions were kept

Revision ID: f1a6c3d9e2b7
Revises: b7d41c2e9a10
Create Date: 2026-12-01 23:00:00

A case waiting in moderation gets its submitted revision frozen from what it holds (its approval then finds
the revision to publish); an approved case gets its approved revision from the published snapshot, with
the studies it holds, so later diffs have a base.
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'f1a6c3d9e2b7'
down_revision: str | None = 'b7d41c2e9a10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STUDIES = """COALESCE((SELECT jsonb_agg(jsonb_build_object('id', s.id, 'position', s.position,
    'modality', s.modality, 'findings', s.findings) ORDER BY s.position, s.created_at)
    FROM studies s WHERE s.case_id = c.id), '[]'::jsonb)"""


def upgrade() -> None:
    op.execute(f"""
        INSERT INTO case_revisions (case_id, n, status, content, submitted_by)
        SELECT c.id, c.revision, 'submitted', jsonb_build_object(
            'title', c.title, 'presentation', c.presentation, 'patient_age', c.patient_age,
            'patient_sex', c.patient_sex, 'systems', c.systems, 'tags', c.tags, 'diagnosis', c.diagnosis,
            'diagnostic_certainty', c.diagnostic_certainty, 'discussion', c.discussion,
            'studies', {_STUDIES},
            'image_ids', COALESCE((SELECT jsonb_agg(i.id ORDER BY i.seq) FROM images i
                                   WHERE i.case_id = c.id AND i.status <> 'receiving'), '[]'::jsonb)),
            c.owner_id
        FROM cases c WHERE c.status IN ('submitted', 'in_review')
        ON CONFLICT DO NOTHING
    """)
    op.execute(f"""
        UPDATE cases c SET public_snapshot = c.public_snapshot || jsonb_build_object('studies', {_STUDIES})
        WHERE c.public_snapshot IS NOT NULL AND NOT c.public_snapshot ? 'studies'
    """)
    op.execute("""
        INSERT INTO case_revisions (case_id, n, status, content, submitted_by, decided_at)
        SELECT c.id, COALESCE((SELECT max(h.revision) FROM case_history h
                               WHERE h.case_id = c.id AND h.action = 'approved'), c.revision),
               'approved', c.public_snapshot, c.owner_id, c.approved_at
        FROM cases c WHERE c.public_snapshot IS NOT NULL AND c.listed_public
        ON CONFLICT DO NOTHING
    """)


def downgrade() -> None:
    pass  # the backfilled rows are ordinary revisions; the table itself goes with the previous revision
