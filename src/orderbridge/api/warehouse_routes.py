"""Warehouse level (ship methods, merchants) and the orderbridge extensions a warehouse uses where
CartRover's public documentation stops: acknowledging an order, posting shipments, pushing stock."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from starlette.responses import JSONResponse

from orderbridge.api import queries
from orderbridge.api.auth import ANY, WAREHOUSE, WAREHOUSE_WRITE
from orderbridge.api.envelope import FAILURE, ApiFailure, ok
from orderbridge.api.routing import Call, Endpoint
from orderbridge.connectors.cartrover import store
from orderbridge.connectors.cartrover.mapping import parse_timestamp
from orderbridge.domain.models import Order, PackageLine, Shipment
from orderbridge.engine.pushed import warehouse_acknowledged
from orderbridge.ledger import schema as t

MAX_STOCK_ROWS = 10_000
MAX_QTY = 1_000_000_000


def ship_methods(call: Call) -> JSONResponse:
    m = t.ship_method_maps
    with call.hub.db.connect() as conn:
        rows = conn.execute(sa.select(m.c.carrier, m.c.service).where(
            m.c.merchant_id.in_(call.scope.merchant_ids), m.c.service != "").distinct()
            .order_by(m.c.carrier, m.c.service)).all()
    return ok([{"carrier": r.carrier, "code": r.service, "description": f"{r.carrier} {r.service}".strip()}
               for r in rows])


def merchants(call: Call) -> JSONResponse:
    m = t.merchants
    with call.hub.db.connect() as conn:
        rows = conn.execute(sa.select(m.c.id, m.c.name).where(m.c.id.in_(call.scope.merchant_ids))
                            .order_by(m.c.id)).all()
    return ok([{"merchant_pk": str(r.id), "name": r.name} for r in rows])


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        raise ApiFailure(f"{name} must be text")
    return str(value).strip()


def _int(value: Any, name: str, *, positive: bool = False) -> int:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ApiFailure(f"{name} must be a whole number, got {value!r}") from None
    if isinstance(value, bool) or not number.is_integer() or abs(number) > MAX_QTY or (positive and number <= 0):
        raise ApiFailure(f"{name} must be a whole number{' above 0' if positive else ''}, got {value!r}")
    return int(number)


def _shipment(raw: Any, index: int, cust_ref: str, queue_id: int, skus: set[str]) -> Shipment:
    where = f"shipments[{index}]"
    if not isinstance(raw, dict):
        raise ApiFailure(f"{where} must be an object (carrier, method, tracking_no, date, items)")
    items = raw.get("items") or []
    if not isinstance(items, list):
        raise ApiFailure(f"{where}.items must be a list of {{item, quantity}}")
    lines = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApiFailure(f"{where}.items[{i}] must be an object with item and quantity")
        sku = _text(item.get("item"), f"{where}.items[{i}].item")
        if sku not in skus:
            raise ApiFailure(f"{where}.items[{i}].item {sku!r} is not on order {cust_ref!r} "
                             f"(its items: {', '.join(sorted(skus))})")
        lines.append(PackageLine(sku=sku, quantity=_int(item.get("quantity"), f"{where}.items[{i}].quantity",
                                                        positive=True)))
    tracking = [n for n in (_text(raw.get("tracking_no"), f"{where}.tracking_no"),
                            _text(raw.get("tracking_no_secondary"), f"{where}.tracking_no_secondary")) if n]
    date = _text(raw.get("date"), f"{where}.date")
    try:
        shipped_at = parse_timestamp(date) if date else None
    except ValueError:
        raise ApiFailure(f"{where}.date must be ISO 8601, got {date!r}") from None
    # A re-posted shipment keeps its id (tracking number, or a digest of its content): retries add nothing.
    content = [[ln.model_dump() for ln in lines], raw.get("carrier"), raw.get("method"), date]
    fingerprint = tracking[0] if tracking else hashlib.sha256(
        json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Shipment(external_id=f"{cust_ref}:{fingerprint}"[:200], order_ref=cust_ref, backend_order_id=str(queue_id),
                    carrier=_text(raw.get("carrier"), f"{where}.carrier"),
                    service=_text(raw.get("method"), f"{where}.method"), tracking_numbers=tracking, lines=lines,
                    shipped_at=shipped_at)


def update(call: Call) -> JSONResponse:
    body = call.body
    if not isinstance(body, dict):
        raise ApiFailure('The body must be an object: {"order_status": "at_wms"} or '
                         '{"order_status": "shipped", "shipments": [...]}')
    status = _text(body.get("order_status"), "order_status").lower()
    if status not in ("at_wms", "shipped"):
        raise ApiFailure(f"order_status must be at_wms or shipped, got {status or 'nothing'!r}")
    cust_ref = call.param("cust_ref")
    backend_id = int(call.scope.backend_id or 0)
    with call.hub.db.begin() as conn:
        row = queries.find_order(conn, call.scope, cust_ref)
        if row.queue_canceled_at is not None or row.api_status == "canceled":
            raise ApiFailure(f"Order {cust_ref!r} was canceled: do not ship it", FAILURE)
        backend = call.hub.connection(conn, backend_id)
        added = known = 0
        if status == "shipped":
            raw_shipments = body.get("shipments")
            if not isinstance(raw_shipments, list) or not raw_shipments:
                raise ApiFailure("order_status shipped needs shipments: a list of {carrier, method, tracking_no, "
                                 "date, items: [{item, quantity}]}")
            order = Order.model_validate(row.data)
            skus = {ln.sku for ln in order.lines} | {str(ln.get("sku")) for ln in row.queue_lines or []}
            parsed = [_shipment(s, i, row.cust_ref, int(row.queue_id), skus) for i, s in enumerate(raw_shipments)]
            for shipment in parsed:
                if store.add_shipment(conn, backend_id, shipment):
                    added += 1
                else:
                    known += 1
        if store.acknowledge(conn, int(row.queue_id)):
            warehouse_acknowledged(conn, int(row.id), backend.name)
    response: dict[str, Any] = {"cust_ref": cust_ref, "order_status": status}
    if status == "shipped":
        response.update(shipments_added=added, shipments_already_known=known)
    return ok(response)


def push_inventory(call: Call) -> JSONResponse:
    body = call.body
    rows = body.get("inventory", [body]) if isinstance(body, dict) else body
    if not isinstance(rows, list) or not rows:
        raise ApiFailure("The body must be a list of {sku, qty_available, qty_on_hand, warehouse}")
    if len(rows) > MAX_STOCK_ROWS:
        raise ApiFailure(f"At most {MAX_STOCK_ROWS} stock rows per call; send the rest in another call")
    levels: dict[tuple[str, str], tuple[int, int]] = {}
    for i, raw in enumerate(rows):
        if not isinstance(raw, dict):
            raise ApiFailure(f"inventory[{i}] must be an object with sku and qty_available")
        sku = _text(raw.get("sku"), f"inventory[{i}].sku")
        if not sku or len(sku) > 200:
            raise ApiFailure(f"inventory[{i}].sku is missing (or over 200 characters)")
        if raw.get("qty_available") is None:
            raise ApiFailure(f"inventory[{i}].qty_available is missing")
        available = _int(raw.get("qty_available"), f"inventory[{i}].qty_available")
        on_hand = _int(raw["qty_on_hand"], f"inventory[{i}].qty_on_hand") if raw.get("qty_on_hand") is not None \
            else available
        warehouse = _text(raw.get("warehouse"), f"inventory[{i}].warehouse")[:200]
        levels[(sku, warehouse)] = (on_hand, available)
    with call.hub.db.begin() as conn:
        for (sku, warehouse), (on_hand, available) in levels.items():
            store.set_stock(conn, int(call.scope.backend_id or 0), sku, warehouse, on_hand, available)
    return ok({"updated": len(levels)})


ENDPOINTS = [
    Endpoint("GET", "/wms/shipmethod/list", ship_methods, ANY, "Warehouse ship methods (codes carts map to)",
             "Warehouse", response="ShipMethodList"),
    Endpoint("GET", "/wms/merchant/list", merchants, WAREHOUSE, "The merchants this key acts for (X-Merchant-Pk)",
             "Warehouse", response="MerchantList"),
]
EXTENSIONS = [
    Endpoint("POST", "/merchant/orders/update/{cust_ref}", update, WAREHOUSE_WRITE,
             "Acknowledge an order (at_wms) or post its shipments (shipped)", "orderbridge extensions",
             body="WarehouseUpdateBody", response="WarehouseUpdateResult", extension=True,
             description="orderbridge extension (CartRover does not document the warehouse side). Needs a "
                         "warehouse's key. Posting the same tracking number again is ignored."),
    Endpoint("POST", "/merchant/inventory", push_inventory, WAREHOUSE_WRITE, "Push stock levels",
             "orderbridge extensions", body="InventoryPushBody", response="InventoryPushResult", extension=True,
             description="orderbridge extension. Levels replace earlier ones per (sku, warehouse); the hub pushes "
                         "available-to-sell to the merchant's stores on its inventory schedule."),
]
