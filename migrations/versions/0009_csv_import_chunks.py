"""candidate CSV uploads stored in ~1 MB chunks, not one bytea

Revision ID: 0009_csv_import_chunks
Revises: 0008_user_sessions
Create Date: 2026-12-01 09:00:00

Uploads of imports that have not finished (uploaded, queued, running) are moved into chunks, so
they can still be mapped and imported; those of finished imports are dropped with the column
(nothing reads them again).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_csv_import_chunks'
down_revision = '0008_user_sessions'
branch_labels = None
depends_on = None

CHUNK = 1024 * 1024


def upgrade():
    op.create_table(
        'candidate_import_chunks',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('import_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['import_id'], ['candidate_imports.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('import_id', 'seq'),
    )
    op.create_index(
        'ix_candidate_import_chunks_org_id', 'candidate_import_chunks', ['org_id'], unique=False
    )
    op.execute(
        f"""
        INSERT INTO candidate_import_chunks (org_id, import_id, seq, data)
        SELECT i.org_id, i.id, s.n, substring(i.data FROM s.n * {CHUNK} + 1 FOR {CHUNK})
        FROM candidate_imports i
        CROSS JOIN LATERAL generate_series(0, (length(i.data) - 1) / {CHUNK}) AS s(n)
        WHERE i.data IS NOT NULL AND length(i.data) > 0
          AND i.status IN ('uploaded', 'queued', 'running')
        """
    )
    with op.batch_alter_table('candidate_imports', schema=None) as batch_op:
        batch_op.drop_column('data')
        # when the mapping was confirmed: a queued or running import is judged stale from then
        batch_op.add_column(sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('candidate_imports', schema=None) as batch_op:
        batch_op.drop_column('queued_at')
        batch_op.add_column(sa.Column('data', sa.LargeBinary(), nullable=True))
    op.execute(
        """
        UPDATE candidate_imports i SET data = c.data
        FROM (SELECT import_id, string_agg(data, ''::bytea ORDER BY seq) AS data
              FROM candidate_import_chunks GROUP BY import_id) c
        WHERE c.import_id = i.id
        """
    )
    op.drop_index('ix_candidate_import_chunks_org_id', table_name='candidate_import_chunks')
    op.drop_table('candidate_import_chunks')
