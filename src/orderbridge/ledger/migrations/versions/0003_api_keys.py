"""CartRover-compatible API: keys, warehouse grants, and the warehouse queue, shipments and stock

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import orderbridge.ledger.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC = orderbridge.ledger.schema.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("api_user", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("last_used_at", UTC(), nullable=True),
        sa.Column("revoked_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_api_keys_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"],
                                name=op.f("fk_api_keys_connection_id_connections")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("api_user", name=op.f("uq_api_keys_api_user")),
    )
    op.create_table(
        "api_key_grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f("fk_api_key_grants_key_id_api_keys"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"],
                                name=op.f("fk_api_key_grants_connection_id_connections")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key_grants")),
        sa.UniqueConstraint("key_id", "connection_id", name=op.f("uq_api_key_grants_key_id_connection_id")),
    )
    op.create_table(
        "api_wms_orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backend_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("cust_ref", sa.String(length=100), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("carrier", sa.String(length=100), nullable=False),
        sa.Column("service", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("acknowledged_at", UTC(), nullable=True),
        sa.Column("canceled_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["backend_id"], ["connections.id"],
                                name=op.f("fk_api_wms_orders_backend_id_connections")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_api_wms_orders_order_id_orders"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_wms_orders")),
        sa.UniqueConstraint("backend_id", "cust_ref", name=op.f("uq_api_wms_orders_backend_id_cust_ref")),
    )
    op.create_index("ix_api_wms_orders_order", "api_wms_orders", ["order_id"])
    op.create_table(
        "api_wms_shipments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backend_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("cust_ref", sa.String(length=100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("received_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["backend_id"], ["connections.id"],
                                name=op.f("fk_api_wms_shipments_backend_id_connections")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_wms_shipments")),
        sa.UniqueConstraint("backend_id", "external_id", name=op.f("uq_api_wms_shipments_backend_id_external_id")),
    )
    op.create_index("ix_api_wms_shipments_received", "api_wms_shipments", ["backend_id", "received_at"])
    op.create_table(
        "api_wms_stock",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("backend_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("warehouse", sa.String(length=200), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["backend_id"], ["connections.id"],
                                name=op.f("fk_api_wms_stock_backend_id_connections")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_wms_stock")),
        sa.UniqueConstraint("backend_id", "sku", "warehouse", name=op.f("uq_api_wms_stock_backend_id_sku_warehouse")),
    )


def downgrade() -> None:
    op.drop_table("api_wms_stock")
    op.drop_index("ix_api_wms_shipments_received", table_name="api_wms_shipments")
    op.drop_table("api_wms_shipments")
    op.drop_index("ix_api_wms_orders_order", table_name="api_wms_orders")
    op.drop_table("api_wms_orders")
    op.drop_table("api_key_grants")
    op.drop_table("api_keys")
