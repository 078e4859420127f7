"""event retention per organization

Revision ID: 0006_event_retention
Revises: f26e4a1760b7
Create Date: 2026-11-30 05:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_event_retention'
down_revision = 'f26e4a1760b7'
branch_labels = None
depends_on = None


def upgrade():
    # Organizations that exist keep every event (0) until an admin chooses; new ones get a year.
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('event_retention_days', sa.Integer(), server_default='0', nullable=False)
        )
        batch_op.add_column(
            sa.Column('events_purged_before', sa.DateTime(timezone=True), nullable=True)
        )
    op.alter_column('organizations', 'event_retention_days', server_default='365')
    # Built without blocking the sends, hits and webhooks that write events meanwhile.
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_events_org_created',
            'events',
            ['org_id', 'created_at'],
            unique=False,
            postgresql_concurrently=True,
        )


def downgrade():
    op.drop_index('ix_events_org_created', table_name='events')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('events_purged_before')
        batch_op.drop_column('event_retention_days')
