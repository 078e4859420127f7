"""used Mailgun webhook tokens, recorded with the event they carried

Revision ID: 0007_webhook_tokens
Revises: 0006_event_retention
Create Date: 2026-12-01 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_webhook_tokens'
down_revision = '0006_event_retention'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_tokens',
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('token', sa.String(length=256), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('org_id', 'token'),
    )
    op.create_index('ix_webhook_tokens_seen_at', 'webhook_tokens', ['seen_at'], unique=False)


def downgrade():
    op.drop_index('ix_webhook_tokens_seen_at', table_name='webhook_tokens')
    op.drop_table('webhook_tokens')
