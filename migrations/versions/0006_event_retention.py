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
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('event_retention_days', sa.Integer(), server_default='365', nullable=False)
        )
        batch_op.add_column(
            sa.Column('events_purged_before', sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_org_created', ['org_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_org_created')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_column('events_purged_before')
        batch_op.drop_column('event_retention_days')
