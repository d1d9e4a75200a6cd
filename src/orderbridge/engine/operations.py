"""What a user does to orders: retry now, cancel sending, add an alias or a ship-method mapping."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orderbridge.domain.models import utcnow
from orderbridge.engine import steps
from orderbridge.engine.hub import Hub
from orderbridge.engine.orders import clear_error, recompute_status
from orderbridge.engine.provision import upsert_alias, upsert_ship_method
from orderbridge.engine.timeline import event
from orderbridge.ledger import schema as t

STEP_TABLES = (t.workflow_steps, t.deliveries, t.confirmations, t.cancellations)


def find_order(conn: Any, ref: str) -> Any:
    """An order by ledger id, cust_ref, cust_po_no or source order id."""
    o = t.orders
    conds = [o.c.cust_ref == ref, o.c.cust_po_no == ref, o.c.external_id == ref]
    if ref.isdigit():
        conds.append(o.c.id == int(ref))
    return conn.execute(sa.select(o).where(sa.or_(*conds)).order_by(o.c.id)).first()


def retry_order(conn: Any, order_id: int, why: str = "retry requested") -> int:
    """Make every failed, parked or waiting-for-retry step of the order due now."""
    n = sum(steps.requeue(conn, table, table.c.order_id == order_id) for table in STEP_TABLES)
    clear_error(conn, order_id)
    event(conn, order_id, "retry", f"Retry: {why}")
    recompute_status(conn, order_id)
    return n


def cancel_sending(conn: Any, order_id: int) -> bool:
    """Stop an order from being sent to the backend; False if it was already delivered."""
    d = t.deliveries
    state = conn.execute(sa.select(d.c.state).where(d.c.order_id == order_id)).scalar()
    if state in (steps.DONE, steps.IN_FLIGHT):
        return False
    conn.execute(d.update().where(d.c.order_id == order_id).values(state=steps.CANCELED))
    conn.execute(t.orders.update().where(t.orders.c.id == order_id).values(sending_canceled=True,
                                                                            updated_at=utcnow()))
    event(conn, order_id, "canceled", "Sending cancelled by a user")
    recompute_status(conn, order_id)
    return True


def orders_in_error_with_sku(conn: Any, merchant_id: int, sku: str) -> list[int]:
    o, ln, c = t.orders, t.order_lines, t.connections
    return [int(i) for i in conn.execute(
        sa.select(o.c.id).distinct().join(ln, ln.c.order_id == o.c.id).join(c, c.c.id == o.c.connection_id)
        .where(c.c.merchant_id == merchant_id, o.c.status == "error", ln.c.sku == sku)).scalars()]


def add_alias(hub: Hub, merchant: str, alias: str, sku: str) -> list[int]:
    """Add (or change) an alias and retry the orders in error that hold that SKU."""
    with hub.db.begin() as conn:
        mid = _merchant(conn, merchant)
        upsert_alias(conn, mid, alias, sku)
        retried = orders_in_error_with_sku(conn, mid, alias)
        for oid in retried:
            retry_order(conn, oid, f"alias {alias} -> {sku} added")
    return retried


def add_ship_method(hub: Hub, merchant: str, source: str, carrier: str, service: str) -> list[int]:
    with hub.db.begin() as conn:
        mid = _merchant(conn, merchant)
        upsert_ship_method(conn, mid, source, carrier, service)
        o, c = t.orders, t.connections
        retried = [int(i) for i in conn.execute(
            sa.select(o.c.id).join(c, c.c.id == o.c.connection_id).where(
                c.c.merchant_id == mid, o.c.status == "error", o.c.error_code == "unmapped_ship_method")).scalars()]
        for oid in retried:
            retry_order(conn, oid, f"ship method {source!r} mapped")
    return retried


def _merchant(conn: Any, name: str) -> int:
    from orderbridge.connectors.errors import ConfigError

    mid = conn.execute(sa.select(t.merchants.c.id).where(t.merchants.c.name == name)).scalar()
    if mid is None:
        raise ConfigError(f"no merchant named {name!r}", fix="declare it in the configuration file")
    return int(mid)
