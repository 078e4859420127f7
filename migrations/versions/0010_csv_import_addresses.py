"""addresses an import has read, so in-file duplicates are found in PostgreSQL

Revision ID: 0010_csv_import_addresses
Revises: 0009_csv_import_chunks
Create Date: 2026-12-07 10:00:00

An unlogged scratch table, without foreign keys (their per-row checks cost as much as the
insert): one row per distinct address of a running import and the line it was first on; deleted
with the import's file, and by the hourly housekeeping when left behind.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0010_csv_import_addresses"
down_revision = "0009_csv_import_chunks"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "candidate_import_addresses",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("import_id", "email"),
        prefixes=["UNLOGGED"],
    )


def downgrade():
    op.drop_table("candidate_import_addresses")
