"""Mapping rules applied on the way to a backend: SKU aliases and ship-method mappings."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from orderbridge.config import RouteOptions
from orderbridge.connectors.base import DeliveryRequest, StoredOrder, order_from_ledger
from orderbridge.connectors.errors import DataError
from orderbridge.ledger import prepared
from orderbridge.ledger import schema as t
from orderbridge.ledger.prepared import ROW_ID, select_by


def aliases(conn: Connection, merchant_id: int) -> dict[str, str]:
    return {r.alias: r.sku for r in prepared.execute(conn, select_by(t.sku_aliases, "merchant_id", "alias", "sku"),
                                                 {ROW_ID: merchant_id})}


@functools.cache
def _ship_method_map() -> Any:
    m = t.ship_method_maps
    return sa.select(m.c.carrier, m.c.service).where(m.c.merchant_id == sa.bindparam(ROW_ID),
                                                     m.c.source_method == sa.bindparam("method"))


def ship_method(conn: Connection, merchant_id: int, method: str) -> tuple[str, str] | None:
    row = prepared.execute(conn, _ship_method_map(), {ROW_ID: merchant_id, "method": method}).first()
    return (row.carrier, row.service) if row else None


class MappingRules:
    """SKU aliases and ship-method mappings, each read once for a batch of deliveries (the orders
    of a batch nearly all share their merchant and a few ship methods). A mapping changed while a
    batch is being delivered applies from the next batch, seconds later."""

    def __init__(self) -> None:
        self._aliases: dict[int, dict[str, str]] = {}
        self._ship_methods: dict[tuple[int, str], tuple[str, str] | None] = {}

    def aliases(self, conn: Connection, merchant_id: int) -> dict[str, str]:
        if merchant_id not in self._aliases:
            self._aliases[merchant_id] = aliases(conn, merchant_id)
        return self._aliases[merchant_id]

    def ship_method(self, conn: Connection, merchant_id: int, method: str) -> tuple[str, str] | None:
        key = (merchant_id, method)
        if key not in self._ship_methods:
            self._ship_methods[key] = ship_method(conn, merchant_id, method)
        return self._ship_methods[key]


def order_columns() -> list[Any]:
    """An order's row with the order and the source's payload as the ledger's JSON text, for the
    steps that read an order: decoded (``StoredOrder``, ``delivery_request``) only where needed."""
    return [sa.cast(c, sa.Text).label(c.name) if c.name in ("data", "raw") else c for c in t.orders.c]


@functools.cache
def order_by_id() -> Any:
    return sa.select(*order_columns()).where(t.orders.c.id == sa.bindparam(ROW_ID))


def stored_order(row: Any) -> StoredOrder:
    return StoredOrder(
        order_id=row.id, external_id=row.external_id, cust_po_no=row.cust_po_no, cust_ref=row.cust_ref,
        order=row.data, raw=row.raw,
        backend_order_id=getattr(row, "backend_order_id", "") or "",
    )


def delivery_request(
    conn: Connection, *, merchant_id: int, order_row: Any, route_options: RouteOptions,
    backend_options: Any, source_name: str, backend_name: str, rules: MappingRules | None = None,
) -> DeliveryRequest:
    """Translate the stored order for the backend; DataError names what to fix. ``rules``: the
    mappings as read for the caller's batch (read here when not given)."""
    rules = rules or MappingRules()
    order = order_from_ledger(order_row.data)
    table = rules.aliases(conn, merchant_id)
    lines = [line.model_copy(update={"sku": table.get(line.sku, line.sku)}) for line in order.lines]
    mapped = order.model_copy(update={"lines": lines})
    carrier, service = "", ""
    if order.shipping_method:
        found = rules.ship_method(conn, merchant_id, order.shipping_method)
        if found:
            carrier, service = found
        elif route_options.ship_method_unmapped == "error":
            raise DataError(
                f"Shipping method {order.shipping_method!r} is not mapped for {backend_name}",
                fix=f"add a ship-method mapping for {order.shipping_method!r} (orderbridge mappings "
                    "ship-method add), then the order is retried",
                code="unmapped_ship_method",
            )
        else:
            service = order.shipping_method
    return DeliveryRequest(
        order=mapped, cust_ref=order_row.cust_ref, cust_po_no=order_row.cust_po_no, carrier=carrier,
        service=service, options=backend_options, source_connection=source_name,
    )
