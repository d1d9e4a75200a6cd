"""Reading orders for the API: the scope of a key, CartRover's status filters and the date each
filter compares, paging, and everything one order record needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.api.auth import Scope
from orderbridge.api.envelope import ApiFailure
from orderbridge.api.parsing import Paging
from orderbridge.ledger import schema as t

o, d, q, c = t.orders, t.deliveries, t.api_wms_orders, t.connections

LIST_FILTERS = ("new", "at_wms", "new_or_at_wms", "partial", "shipped", "confirmed", "shipped_or_confirmed",
                "error", "canceled", "any")

# An order queued for a CartRover API warehouse is "new" to the API until the warehouse acknowledges it.
STATUS = sa.case(
    (sa.and_(o.c.status == "at_wms", q.c.id.is_not(None), q.c.acknowledged_at.is_(None)), "new"),
    else_=o.c.status,
)
SHIPPED_AT = sa.select(sa.func.max(t.shipments.c.created_at)).where(
    t.shipments.c.order_id == o.c.id).scalar_subquery()
CONFIRMED_AT = sa.select(sa.func.max(t.confirmations.c.done_at)).where(
    t.confirmations.c.order_id == o.c.id).scalar_subquery()
CANCELED_AT = sa.select(sa.func.max(t.cancellations.c.detected_at)).where(
    t.cancellations.c.order_id == o.c.id).scalar_subquery()
DELIVERED_AT = sa.func.coalesce(q.c.acknowledged_at, sa.case((q.c.id.is_(None), d.c.done_at)))

COLUMNS: list[Any] = [o, STATUS.label("api_status"), c.c.type.label("source_type"), c.c.name.label("source_name"),
           d.c.done_at.label("delivered_at"), d.c.backend_id, q.c.id.label("queue_id"), q.c.lines.label("queue_lines"),
           q.c.carrier.label("queue_carrier"), q.c.service.label("queue_service"),
           q.c.acknowledged_at, q.c.canceled_at.label("queue_canceled_at"), DELIVERED_AT.label("to_wms_at"),
           CANCELED_AT.label("canceled_at")]


def _from() -> Any:
    return (o.join(c, c.c.id == o.c.connection_id).outerjoin(d, d.c.order_id == o.c.id)
            .outerjoin(q, sa.and_(q.c.order_id == o.c.id, q.c.backend_id == d.c.backend_id)))


def scoped(scope: Scope) -> Any:
    if scope.source_id is not None:
        return o.c.connection_id == scope.source_id
    if scope.backend_id is not None:
        return q.c.backend_id == scope.backend_id
    return c.c.merchant_id.in_(scope.merchant_ids)


def _status_filter(status: str) -> tuple[Any, Any]:
    """(where clause, the date from_date/to_date compare) for a list filter."""
    if status not in LIST_FILTERS:
        raise ApiFailure(f"Unknown order status {status!r}; use one of: {', '.join(LIST_FILTERS)}")
    if status == "any":
        return sa.true(), o.c.created_at
    if status == "new_or_at_wms":
        return STATUS.in_(("new", "at_wms")), o.c.created_at
    if status == "shipped_or_confirmed":
        return STATUS.in_(("shipped", "confirmed")), SHIPPED_AT
    dates = {"new": o.c.created_at, "at_wms": DELIVERED_AT, "partial": SHIPPED_AT, "shipped": SHIPPED_AT,
             "confirmed": CONFIRMED_AT, "error": o.c.updated_at, "canceled": sa.func.coalesce(CANCELED_AT,
                                                                                              o.c.updated_at)}
    return STATUS == status, dates[status]


@dataclass
class Page:
    rows: list[Any]
    total: int


def list_orders(conn: Connection, scope: Scope, status: str, paging: Paging, since: datetime | None,
                until: datetime | None, order_source: str | None = None) -> Page:
    where, compared = _status_filter(status)
    clauses = [scoped(scope), where]
    if since is not None:
        clauses.append(compared >= since)
    if until is not None:
        clauses.append(compared <= until)
    if order_source:
        clauses.append(c.c.name == order_source)
    total = conn.execute(sa.select(sa.func.count()).select_from(_from()).where(*clauses)).scalar_one()
    rows = conn.execute(sa.select(*COLUMNS).select_from(_from()).where(*clauses).order_by(o.c.id)
                        .limit(paging.limit).offset(paging.offset)).all()
    return Page(rows=list(rows), total=int(total))


def find_order(conn: Connection, scope: Scope, cust_ref: str) -> Any:
    """One order by the reference the caller knows: the cart's own cust_ref at cart level, the hub's
    cust_ref (what warehouses see) at merchant level."""
    ref = o.c.external_id if scope.source_id is not None else (
        q.c.cust_ref if scope.backend_id is not None else o.c.cust_ref)
    row = conn.execute(sa.select(*COLUMNS).select_from(_from()).where(scoped(scope), ref == cust_ref)
                       .order_by(o.c.id.desc()).limit(1)).first()
    if row is None:
        raise ApiFailure(f"Order {cust_ref!r} not found", detail={"cust_ref": cust_ref})
    return row


def shipments_of(conn: Connection, order_ids: list[int]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {i: [] for i in order_ids}
    if order_ids:
        s = t.shipments
        for row in conn.execute(sa.select(s).where(s.c.order_id.in_(order_ids)).order_by(s.c.id)):
            out[int(row.order_id)].append(row)
    return out
