"""dashboard users; orders indexed by order date

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import orderbridge.ledger.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("created_at", orderbridge.ledger.schema.UTCDateTime(), nullable=False),
        sa.Column("updated_at", orderbridge.ledger.schema.UTCDateTime(), nullable=False),
        sa.Column("last_login_at", orderbridge.ledger.schema.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_users_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index("ix_orders_order_date", "orders", ["order_date"])


def downgrade() -> None:
    op.drop_index("ix_orders_order_date", table_name="orders")
    op.drop_table("users")
