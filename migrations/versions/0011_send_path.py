"""messages.attempted_at: when the attempt on the wire began (NULL while only claimed)

Revision ID: 0011_send_path
Revises: 0010_csv_import_addresses
Create Date: 2026-12-07 11:40:00

The per-candidate cap counts bulk mail sent within its window and mail another sender has on
the wire now: a claimed row is on the wire once its begin stamped this column.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0011_send_path"
down_revision = "0010_csv_import_addresses"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("messages", sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("messages", "attempted_at")
