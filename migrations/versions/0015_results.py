"""results: invitation-page views, attendance and the follow-up after the interview

Revision ID: 0015_results
Revises: 0014_answers
Create Date: 2026-12-07 11:45:00

Views are events like opens and clicks: the message keeps its first view and first human view,
the rollups count them (all, human, unique, unique human). A view looks up the invitation's
message by invitation id, so that lookup gets a (partial) index. A fixed-time interview's
attendance is marked on the invitation (a booked slot's on the booking); followed_up_at is the
claim that makes the follow-up go once. Two partial indexes hold just the attended candidates,
so the periodic follow-up job reads those, not every invitation of every campaign.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0015_results"
down_revision = "0014_answers"
branch_labels = None
depends_on = None

VIEW_COUNTERS = ("views", "views_human", "unique_views", "unique_views_human")


def upgrade():
    op.add_column("messages", sa.Column("viewed_at", sa.DateTime(timezone=True)))
    op.add_column("messages", sa.Column("human_viewed_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_messages_invitation",
        "messages",
        ["invitation_id"],
        postgresql_where=sa.text("invitation_id IS NOT NULL"),
    )
    for name in VIEW_COUNTERS:
        op.add_column(
            "rollups", sa.Column(name, sa.Integer(), nullable=False, server_default="0")
        )
    op.add_column(
        "campaigns",
        sa.Column(
            "follow_up_template_id",
            sa.Integer(),
            sa.ForeignKey("email_templates.id", ondelete="SET NULL"),
        ),
    )
    op.add_column(
        "campaigns",
        sa.Column("follow_up_hours", sa.Integer(), nullable=False, server_default="24"),
    )
    op.add_column("invitations", sa.Column("attended", sa.String(16)))
    op.add_column("invitations", sa.Column("followed_up_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_invitations_follow_up_due",
        "invitations",
        ["campaign_id"],
        postgresql_where=sa.text("attended = 'attended' AND followed_up_at IS NULL"),
    )
    op.create_index(
        "ix_bookings_attended",
        "bookings",
        ["invitation_id"],
        postgresql_where=sa.text("attended = 'attended' AND status = 'active'"),
    )


def downgrade():
    op.drop_index("ix_bookings_attended", table_name="bookings")
    op.drop_index("ix_invitations_follow_up_due", table_name="invitations")
    for name in ("followed_up_at", "attended"):
        op.drop_column("invitations", name)
    op.drop_column("campaigns", "follow_up_hours")
    op.drop_column("campaigns", "follow_up_template_id")
    for name in VIEW_COUNTERS:
        op.drop_column("rollups", name)
    op.drop_index("ix_messages_invitation", table_name="messages")
    op.drop_column("messages", "human_viewed_at")
    op.drop_column("messages", "viewed_at")
