"""The "external system" of a CartRover API warehouse: its queue, shipments and stock, kept in the
hub's own tables. The connector reads and writes them as any backend connector talks to its API;
orderbridge's /v1 API writes what the warehouse reports (acknowledgements, shipments, stock)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from orderbridge.domain.models import Shipment, utcnow
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import new_id

q, sh, st = t.api_wms_orders, t.api_wms_shipments, t.api_wms_stock


def find(conn: Connection, backend_id: int, cust_ref: str) -> int | None:
    found = conn.execute(sa.select(q.c.id).where(q.c.backend_id == backend_id, q.c.cust_ref == cust_ref)).scalar()
    return int(found) if found is not None else None


def enqueue(conn: Connection, backend_id: int, cust_ref: str, lines: list[dict[str, Any]], carrier: str,
            service: str) -> int:
    """Put an order in the warehouse's queue once; a second call returns the first one's id."""
    existing = find(conn, backend_id, cust_ref)
    if existing is not None:
        return existing
    order_id = conn.execute(sa.select(t.deliveries.c.order_id).where(
        t.deliveries.c.backend_id == backend_id, t.deliveries.c.cust_ref == cust_ref)).scalar_one()
    try:
        with conn.begin_nested():
            return new_id(conn.execute(q.insert().values(
                backend_id=backend_id, order_id=order_id, cust_ref=cust_ref, lines=lines, carrier=carrier,
                service=service, created_at=utcnow())))
    except IntegrityError:  # queued concurrently
        return int(find(conn, backend_id, cust_ref) or 0)


def cancel(conn: Connection, queue_id: int) -> bool:
    """Withdraw an order the warehouse has not acknowledged; False when it already has."""
    res = conn.execute(q.update().where(q.c.id == queue_id, q.c.acknowledged_at.is_(None))
                       .values(canceled_at=utcnow()))
    return bool(res.rowcount)


def acknowledge(conn: Connection, queue_id: int) -> bool:
    """The warehouse has the order (at_wms); True the first time."""
    res = conn.execute(q.update().where(q.c.id == queue_id, q.c.acknowledged_at.is_(None))
                       .values(acknowledged_at=utcnow()))
    return bool(res.rowcount)


def add_shipment(conn: Connection, backend_id: int, shipment: Shipment) -> bool:
    """Record a shipment the warehouse posted; False when this one was posted before (a retry)."""
    try:
        with conn.begin_nested():
            conn.execute(sh.insert().values(backend_id=backend_id, external_id=shipment.external_id,
                                            cust_ref=shipment.order_ref, data=shipment.model_dump(mode="json"),
                                            received_at=utcnow()))
    except IntegrityError:
        return False
    return True


def shipments(conn: Connection, backend_id: int, since: datetime | None, until: datetime) -> list[Shipment]:
    query = sa.select(sh.c.data).where(sh.c.backend_id == backend_id, sh.c.received_at <= until)
    if since is not None:
        query = query.where(sh.c.received_at >= since)
    return [Shipment.model_validate(r.data) for r in conn.execute(query.order_by(sh.c.id))]


def set_stock(conn: Connection, backend_id: int, sku: str, warehouse: str, on_hand: int, available: int) -> None:
    values = {"on_hand": on_hand, "available": available, "updated_at": utcnow()}
    res = conn.execute(st.update().where(st.c.backend_id == backend_id, st.c.sku == sku,
                                         st.c.warehouse == warehouse).values(**values))
    if not res.rowcount:
        conn.execute(st.insert().values(backend_id=backend_id, sku=sku, warehouse=warehouse, **values))


def stock(conn: Connection, backend_id: int) -> list[Any]:
    return list(conn.execute(sa.select(st).where(st.c.backend_id == backend_id).order_by(st.c.sku, st.c.warehouse)))
