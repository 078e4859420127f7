"""candidates' answers: decline reasons; org business hours for reminders

Revision ID: 0014_answers
Revises: 0013_slots
Create Date: 2026-12-07 12:00:00

A declining candidate may give a reason (a short code) and a note, kept for the recruiter.
Business hours (days of the week, start and end in minutes after local midnight) bound when
reminders go; Monday to Friday, 09:00 to 17:00 unless the org changes them.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = "0014_answers"
down_revision = "0013_slots"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("invitations", sa.Column("decline_reason", sa.String(length=40), nullable=True))
    op.add_column("invitations", sa.Column("decline_note", sa.Text(), nullable=True))
    op.add_column(
        "organizations",
        sa.Column(
            "business_days",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default="[0, 1, 2, 3, 4]",
        ),
    )
    op.add_column(
        "organizations",
        sa.Column("business_start_minute", sa.Integer(), nullable=False, server_default="540"),
    )
    op.add_column(
        "organizations",
        sa.Column("business_end_minute", sa.Integer(), nullable=False, server_default="1020"),
    )
    op.create_check_constraint(
        "ck_organizations_business_hours",
        "organizations",
        "business_start_minute >= 0 AND business_end_minute <= 1440 "
        "AND business_start_minute < business_end_minute",
    )


def downgrade():
    op.drop_constraint("ck_organizations_business_hours", "organizations", type_="check")
    for column in ("business_end_minute", "business_start_minute", "business_days"):
        op.drop_column("organizations", column)
    op.drop_column("invitations", "decline_note")
    op.drop_column("invitations", "decline_reason")
