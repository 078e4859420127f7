"""messages.lane: transactional mail is claimed before bulk and charged to its own rates

Revision ID: 0012_lanes
Revises: 0011_send_path
Create Date: 2026-12-07 12:00:00

Existing rows take their kind's lane: the bulk kinds (invitation, reminder, follow_up, custom)
are bulk, every other kind (account mail, moved or cancelled interview notices, answers to the
recruiter, tests) is transactional. The claim reads queued rows in the order of
ix_messages_claim: transactional first, then oldest due first.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0012_lanes"
down_revision = "0011_send_path"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("messages", sa.Column("lane", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE messages SET lane = CASE WHEN kind IN "
        "('invitation', 'reminder', 'follow_up', 'custom') THEN 'bulk' ELSE 'transactional' END"
    )
    op.alter_column("messages", "lane", nullable=False)
    op.create_check_constraint(
        "ck_messages_lane", "messages", "lane IN ('transactional', 'bulk')"
    )
    op.create_index(
        "ix_messages_claim",
        "messages",
        [sa.text("(lane = 'bulk')"), "send_after", "id"],
        postgresql_where=sa.text("status = 'queued'"),
    )


def downgrade():
    op.drop_index("ix_messages_claim", table_name="messages")
    op.drop_constraint("ck_messages_lane", "messages", type_="check")
    op.drop_column("messages", "lane")
