"""interview slots, their interviewers and candidates' bookings; a campaign's scheduling mode

Revision ID: 0013_slots
Revises: 0012_lanes
Create Date: 2026-12-07 11:40:00

A slot's `booked` counter is raised only by a guarded UPDATE and CHECKed against its capacity,
so the database itself refuses an overbooking; a partial unique index keeps one active booking
per candidate and campaign. Existing campaigns with a time are 'fixed', the rest 'none'.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0013_slots"
down_revision = "0012_lanes"
branch_labels = None
depends_on = None


def _tenant_column():
    return sa.Column(
        "org_id",
        sa.Integer(),
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    )


def _create_slots():
    op.create_table(
        "interview_slots",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        _tenant_column(),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), server_default="1", nullable=False),
        sa.Column("booked", sa.Integer(), server_default="0", nullable=False),
        sa.Column("location", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("capacity >= 1", name="ck_interview_slots_capacity"),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_interview_slots_booked"),
    )
    op.create_index("ix_interview_slots_org_id", "interview_slots", ["org_id"])
    op.create_index("ix_interview_slots_campaign_id", "interview_slots", ["campaign_id"])
    op.create_index(
        "ix_interview_slots_campaign_starts", "interview_slots", ["campaign_id", "starts_at"]
    )
    op.create_table(
        "slot_interviewers",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        _tenant_column(),
        sa.Column(
            "slot_id",
            sa.BigInteger(),
            sa.ForeignKey("interview_slots.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
    )
    op.create_index("ix_slot_interviewers_org_id", "slot_interviewers", ["org_id"])
    op.create_index("ix_slot_interviewers_slot_id", "slot_interviewers", ["slot_id"])
    op.create_index("ix_slot_interviewers_user_id", "slot_interviewers", ["user_id"])


def _create_bookings():
    op.create_table(
        "bookings",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        _tenant_column(),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "slot_id", sa.BigInteger(), sa.ForeignKey("interview_slots.id"), nullable=False
        ),
        sa.Column(
            "invitation_id",
            sa.BigInteger(),
            sa.ForeignKey("invitations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "candidate_id",
            sa.BigInteger(),
            sa.ForeignKey("candidates.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.String(length=120), nullable=False),
        sa.Column("sequence", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attended", sa.String(length=16), nullable=True),
    )
    op.create_index("ix_bookings_org_id", "bookings", ["org_id"])
    op.create_index("ix_bookings_campaign_id", "bookings", ["campaign_id"])
    op.create_index("ix_bookings_slot_id", "bookings", ["slot_id"])
    op.create_index("ix_bookings_invitation_id", "bookings", ["invitation_id"])
    op.create_index("ix_bookings_uid", "bookings", ["uid"])
    op.create_index(
        "uq_bookings_active_candidate",
        "bookings",
        ["campaign_id", "candidate_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )


def upgrade():
    _create_slots()
    _create_bookings()
    op.add_column(
        "campaigns",
        sa.Column("scheduling", sa.String(length=8), server_default="none", nullable=False),
    )
    op.execute("UPDATE campaigns SET scheduling = 'fixed' WHERE slot_starts_at IS NOT NULL")
    op.add_column(
        "organizations",
        sa.Column("reschedule_cutoff_hours", sa.Integer(), server_default="24", nullable=False),
    )
    op.add_column("invitations", sa.Column("no_slot_fits_note", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("invitations", "no_slot_fits_note")
    op.drop_column("organizations", "reschedule_cutoff_hours")
    op.drop_column("campaigns", "scheduling")
    op.drop_table("bookings")
    op.drop_table("slot_interviewers")
    op.drop_table("interview_slots")
