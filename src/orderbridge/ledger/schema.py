"""The ledger's tables. Every row has a unique business key; every step has its own state.

Steps (workflow steps, deliveries, confirmations, cancellations, inventory pushes) share the
columns of ``step_columns``: ``state`` (pending, in_flight, done, error, parked, canceled),
``attempts``, ``next_attempt_at``, ``last_error``, ``intent_at`` (written, and committed, before
the external call) and ``done_at`` (written after it). A row left ``in_flight`` by a crash is
resolved by a lookup at the other side, never by a blind second call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: one meaning on SQLite and PostgreSQL alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use UTC-aware datetimes")
        if value.tzinfo is UTC:  # utcnow()'s, nearly every time bound: no conversion to make
            return value.replace(tzinfo=None)
        return value.astimezone(UTC).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        to_naive = self.process_bind_param

        def sqlite_text(value: datetime | None) -> str | None:
            # SQLite's DATETIME text ("YYYY-MM-DD HH:MM:SS.ffffff") written in one step: every
            # claim and result of a step binds a time or two, and the two-step way (this type's
            # conversion, then the dialect's formatting in Python) was 3 % of a hub's CPU.
            naive = to_naive(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")

        return sqlite_text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

STEP_STATES = ("pending", "in_flight", "done", "error", "parked", "canceled", "waiting")


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _created() -> sa.Column[datetime]:
    return sa.Column("created_at", UTCDateTime, nullable=False)


def step_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("state", sa.String(16), nullable=False, default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("first_failure_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False, default=""),
        sa.Column("intent_at", UTCDateTime, nullable=True),
        sa.Column("done_at", UTCDateTime, nullable=True),
    ]


merchants = sa.Table(
    "merchants",
    metadata,
    _id(),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    _created(),
)

connections = sa.Table(
    "connections",
    metadata,
    _id(),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("type", sa.String(60), nullable=False),
    sa.Column("role", sa.String(10), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False, default=dict),
    sa.Column("credentials_enc", sa.Text, nullable=False, default=""),
    sa.Column("base_url", sa.String(500), nullable=False, default=""),
    sa.Column("test_mode", sa.Boolean, nullable=False, default=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("schedule", sa.JSON, nullable=False, default=dict),
    sa.Column("rate_limit", sa.JSON, nullable=True),  # {"calls": N, "period": S} overriding the connector's
    _created(),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

routes = sa.Table(
    "routes",
    metadata,
    _id(),
    sa.Column("source_id", sa.ForeignKey("connections.id"), nullable=False, unique=True),
    sa.Column("backend_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("options", sa.JSON, nullable=False, default=dict),
    sa.Column("backend_options", sa.JSON, nullable=False, default=dict),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    _created(),
)

orders = sa.Table(
    "orders",
    metadata,
    _id(),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("cust_po_no", sa.String(200), nullable=False, default=""),
    sa.Column("cust_ref", sa.String(100), nullable=False, default=""),
    sa.Column("status", sa.String(16), nullable=False, default="new"),
    sa.Column("sending_canceled", sa.Boolean, nullable=False, default=False),
    sa.Column("on_hold", sa.Boolean, nullable=False, default=False),
    sa.Column("source_status", sa.String(60), nullable=False, default=""),
    sa.Column("order_date", UTCDateTime, nullable=True),
    sa.Column("customer_name", sa.String(300), nullable=False, default=""),
    sa.Column("paid", sa.Boolean, nullable=False, default=True),
    sa.Column("raw", sa.JSON, nullable=False, default=dict),
    # A digest of the raw entry as last read by a poll (connectors/stored_reads.py): a re-read
    # with the same digest is passed over without being mapped again. Null until a poll reads it.
    sa.Column("raw_digest", sa.LargeBinary(16), nullable=True),
    sa.Column("data", sa.JSON, nullable=True),  # the canonical order; null when mapping failed
    sa.Column("error_code", sa.String(60), nullable=False, default=""),
    sa.Column("error_message", sa.Text, nullable=False, default=""),
    sa.Column("error_fix", sa.Text, nullable=False, default=""),
    _created(),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("connection_id", "external_id"),
    sa.Index("ix_orders_status", "status", "connection_id"),
    sa.Index("ix_orders_connection_created", "connection_id", "created_at"),
    sa.Index("ix_orders_cust_po_no", "cust_po_no"),
    sa.Index("ix_orders_cust_ref", "cust_ref"),
    sa.Index("ix_orders_created", "created_at"),
    sa.Index("ix_orders_error_code", "error_code"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    _id(),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("sku", sa.String(200), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Numeric(14, 4), nullable=False, default=0),
    sa.Column("description", sa.String(500), nullable=False, default=""),
    sa.UniqueConstraint("order_id", "line_no"),
    sa.Index("ix_order_lines_sku", "sku"),
)

order_events = sa.Table(
    "order_events",
    metadata,
    _id(),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.JSON, nullable=True),
    sa.Index("ix_order_events_order", "order_id", "id"),
)

workflow_steps = sa.Table(
    "workflow_steps",
    metadata,
    _id(),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("label", sa.String(200), nullable=False, default=""),
    sa.Column("seq", sa.Integer, nullable=False, default=0),
    sa.Column("blocks_delivery", sa.Boolean, nullable=False, default=True),
    *step_columns(),
    sa.UniqueConstraint("order_id", "name"),
    sa.Index("ix_workflow_steps_due", "state", "next_attempt_at"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    _id(),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    sa.Column("backend_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("cust_ref", sa.String(100), nullable=False),
    sa.Column("idempotency_key", sa.String(100), nullable=False),
    sa.Column("backend_order_id", sa.String(200), nullable=False, default=""),
    *step_columns(),
    sa.UniqueConstraint("order_id", "backend_id"),
    sa.UniqueConstraint("backend_id", "cust_ref"),
    sa.Index("ix_deliveries_due", "backend_id", "state", "next_attempt_at"),
    sa.Index("ix_deliveries_backend_order", "backend_id", "backend_order_id"),
)

shipments = sa.Table(
    "shipments",
    metadata,
    _id(),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    sa.Column("backend_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("carrier", sa.String(100), nullable=False, default=""),
    sa.Column("service", sa.String(100), nullable=False, default=""),
    sa.Column("tracking_numbers", sa.JSON, nullable=False, default=list),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("shipped_at", UTCDateTime, nullable=True),
    _created(),
    sa.UniqueConstraint("backend_id", "external_id"),
    sa.Index("ix_shipments_order", "order_id"),
)

confirmations = sa.Table(
    "confirmations",
    metadata,
    _id(),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),  # "order", or a shipment's external id
    sa.Column("shipment_ids", sa.JSON, nullable=False, default=list),
    sa.Column("note", sa.Text, nullable=False, default=""),
    *step_columns(),
    sa.UniqueConstraint("order_id", "key"),
    sa.Index("ix_confirmations_due", "state", "next_attempt_at"),
)

cancellations = sa.Table(
    "cancellations",
    metadata,
    _id(),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, unique=True),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("detected_at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(30), nullable=False, default=""),
    *step_columns(),
    sa.Index("ix_cancellations_due", "state", "next_attempt_at"),
)

stock_levels = sa.Table(
    "stock_levels",
    metadata,
    _id(),
    sa.Column("backend_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("sku", sa.String(200), nullable=False),
    sa.Column("warehouse", sa.String(200), nullable=False, default=""),
    sa.Column("on_hand", sa.Integer, nullable=False, default=0),
    sa.Column("committed", sa.Integer, nullable=False, default=0),
    sa.Column("available", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("backend_id", "sku", "warehouse"),
)

inventory_pushes = sa.Table(
    "inventory_pushes",
    metadata,
    _id(),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("sku", sa.String(200), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),  # the value to have at the source
    sa.Column("pushed_quantity", sa.Integer, nullable=True),  # the value it last accepted
    sa.Column("detail", sa.JSON, nullable=False, default=dict),
    *step_columns(),
    sa.UniqueConstraint("connection_id", "sku"),
    sa.Index("ix_inventory_pushes_due", "connection_id", "state"),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("connection_id", sa.ForeignKey("connections.id"), primary_key=True),
    sa.Column("job", sa.String(40), primary_key=True),
    sa.Column("value", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

skipped_orders = sa.Table(
    "skipped_orders",
    metadata,
    _id(),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source_status", sa.String(60), nullable=False, default=""),
    sa.Column("order_date", UTCDateTime, nullable=True),
    sa.Column("final", sa.Boolean, nullable=False, default=False),
    sa.Column("raw", sa.JSON, nullable=False, default=dict),
    sa.Column("seen_count", sa.Integer, nullable=False, default=1),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("connection_id", "external_id"),
)

sku_aliases = sa.Table(
    "sku_aliases",
    metadata,
    _id(),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("alias", sa.String(200), nullable=False),  # the SKU as the source sends it
    sa.Column("sku", sa.String(200), nullable=False),  # the SKU the backend knows
    _created(),
    sa.UniqueConstraint("merchant_id", "alias"),
    sa.Index("ix_sku_aliases_sku", "merchant_id", "sku"),
)

ship_method_maps = sa.Table(
    "ship_method_maps",
    metadata,
    _id(),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("source_method", sa.String(200), nullable=False),
    sa.Column("carrier", sa.String(100), nullable=False, default=""),
    sa.Column("service", sa.String(100), nullable=False, default=""),
    _created(),
    sa.UniqueConstraint("merchant_id", "source_method"),
)

job_state = sa.Table(
    "job_state",
    metadata,
    sa.Column("connection_id", sa.ForeignKey("connections.id"), primary_key=True),
    sa.Column("job", sa.String(40), primary_key=True),
    sa.Column("lease_owner", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("last_started_at", UTCDateTime, nullable=True),
    sa.Column("last_finished_at", UTCDateTime, nullable=True),
    sa.Column("last_status", sa.String(16), nullable=False, default=""),
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.Column("last_processed", sa.Integer, nullable=False, default=0),
    sa.Column("next_run_at", UTCDateTime, nullable=True),
)

job_runs = sa.Table(
    "job_runs",
    metadata,
    _id(),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("job", sa.String(40), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False, default=""),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, default="running"),
    sa.Column("processed", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Index("ix_job_runs_recent", "connection_id", "job", "started_at"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    _id(),
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=True),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=True),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("dedup_key", sa.String(300), nullable=False, unique=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("fix", sa.Text, nullable=False, default=""),
    sa.Column("count", sa.Integer, nullable=False, default=1),
    _created(),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Index("ix_alerts_open", "resolved_at", "created_at"),
)

webhook_events = sa.Table(
    "webhook_events",
    metadata,
    _id(),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("connection_id", "event_id"),
)

# ------------------------------------------------------------------- CartRover-compatible API (0003)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(),
    sa.Column("api_user", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(128), nullable=False),  # sha256 of the key; the key is shown once
    sa.Column("level", sa.String(16), nullable=False),  # cart, merchant, warehouse
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=True),  # cart and merchant keys
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=True),  # the cart, or the WMS backend
    sa.Column("label", sa.String(200), nullable=False, default=""),
    _created(),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

api_key_grants = sa.Table(  # the CartRover API warehouse connections a warehouse key serves
    "api_key_grants",
    metadata,
    _id(),
    sa.Column("key_id", sa.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    sa.Column("connection_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.UniqueConstraint("key_id", "connection_id"),
)

api_wms_orders = sa.Table(  # orders delivered to a CartRover API warehouse, waiting to be pulled
    "api_wms_orders",
    metadata,
    _id(),
    sa.Column("backend_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("order_id", sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    sa.Column("cust_ref", sa.String(100), nullable=False),
    sa.Column("lines", sa.JSON, nullable=False, default=list),  # [{sku (as the warehouse knows it), quantity}]
    sa.Column("carrier", sa.String(100), nullable=False, default=""),
    sa.Column("service", sa.String(100), nullable=False, default=""),
    _created(),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("canceled_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("backend_id", "cust_ref"),
    sa.Index("ix_api_wms_orders_order", "order_id"),
)

api_wms_shipments = sa.Table(  # shipments posted by a warehouse, picked up by the shipments job
    "api_wms_shipments",
    metadata,
    _id(),
    sa.Column("backend_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("cust_ref", sa.String(100), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),  # the canonical shipment
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("backend_id", "external_id"),
    sa.Index("ix_api_wms_shipments_received", "backend_id", "received_at"),
)

api_wms_stock = sa.Table(  # stock levels pushed by a warehouse, picked up by the stock job
    "api_wms_stock",
    metadata,
    _id(),
    sa.Column("backend_id", sa.ForeignKey("connections.id"), nullable=False),
    sa.Column("sku", sa.String(200), nullable=False),
    sa.Column("warehouse", sa.String(200), nullable=False, default=""),
    sa.Column("on_hand", sa.Integer, nullable=False, default=0),
    sa.Column("available", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("backend_id", "sku", "warehouse"),
)

# ------------------------------------------------------------------- dashboard users (0004)

users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(300), nullable=False),
    # NULL: an administrator of every merchant; otherwise the only merchant this user sees.
    sa.Column("merchant_id", sa.ForeignKey("merchants.id"), nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_login_at", UTCDateTime, nullable=True),
)

# The dashboard filters orders by order date.
sa.Index("ix_orders_order_date", orders.c.order_date)

# One row per external account: the theoretical arrival time (GCRA, seconds since the epoch on
# the database's clock) of its next call, shared by every worker of a cluster.
rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("tat", sa.Float, nullable=False),
)
