"""a digest of each order's raw entry as last read (orders.raw_digest)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null for orders stored before: the next poll that reads one maps it and fills it in.
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("raw_digest", sa.LargeBinary(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("raw_digest")
