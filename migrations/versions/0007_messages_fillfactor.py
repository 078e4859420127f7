"""messages: room on each page for a row's next versions (HOT updates while sending)

Revision ID: 0007_messages_fillfactor
Revises: 0006_event_retention
Create Date: 2026-11-30 10:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007_messages_fillfactor'
down_revision = '0006_event_retention'
branch_labels = None
depends_on = None


def upgrade():
    # A message row is updated a few times while it is sent (claim, begin, outcome). With room
    # left on its page, the updates that change no indexed column (the begin) are HOT: no new
    # entry in any of the table's indexes. Applies to pages written from now on.
    op.execute("ALTER TABLE messages SET (fillfactor = 70)")


def downgrade():
    op.execute("ALTER TABLE messages RESET (fillfactor)")
