"""Changes reported by systems that call the hub's API instead of being polled: a cart confirming
the tracking it read, a warehouse acknowledging an order. (Orders pushed by carts go through
intake.store_items, cancellations through cancels.record_cancellation, like any other.)"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.domain.models import utcnow
from orderbridge.engine import steps
from orderbridge.engine.orders import recompute_status
from orderbridge.engine.timeline import event
from orderbridge.ledger import schema as t


def cart_confirmed(conn: Connection, order_id: int, tracking: list[str]) -> str:
    """The cart has processed the order's tracking: each shipment recorded so far is confirmed."""
    c = t.confirmations
    known = {r.key for r in conn.execute(sa.select(c.c.key).where(c.c.order_id == order_id))}
    added = 0
    for (external_id,) in conn.execute(sa.select(t.shipments.c.external_id).where(
            t.shipments.c.order_id == order_id).order_by(t.shipments.c.id)):
        if external_id in known:
            continue
        conn.execute(c.insert().values(
            order_id=order_id, key=external_id, shipment_ids=[external_id], state=steps.DONE, attempts=1,
            last_error="", note="confirmed by the cart through the API", done_at=utcnow()))
        added += 1
    if added:
        numbers = ", ".join(tracking) if tracking else "no tracking numbers listed"
        event(conn, order_id, "confirmed", f"The cart confirmed the shipment tracking ({numbers})")
    return recompute_status(conn, order_id)


def warehouse_acknowledged(conn: Connection, order_id: int, backend_name: str) -> None:
    event(conn, order_id, "acknowledged", f"{backend_name} acknowledged the order: it is at the warehouse")
