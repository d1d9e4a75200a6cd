"""Merchant level: orders of every cart of the merchant, inventory, products with aliases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.responses import JSONResponse

from orderbridge.api import order_reads
from orderbridge.api.auth import MERCHANT, Scope
from orderbridge.api.envelope import ApiFailure, ok
from orderbridge.api.parsing import paging
from orderbridge.api.records import inventory_record
from orderbridge.api.routing import Call, Endpoint
from orderbridge.ledger import schema as t

INVENTORY_MAX_LIMIT = 250  # some clients ask for 250 per page


def _stock_table(scope: Scope) -> tuple[Any, Any]:
    """A warehouse's key reads what it pushed; a merchant key the hub's snapshot of every backend."""
    if scope.backend_id is not None:
        s = t.api_wms_stock
        return s, s.c.backend_id == scope.backend_id
    s = t.stock_levels
    backends = sa.select(t.connections.c.id).where(t.connections.c.merchant_id.in_(scope.merchant_ids))
    return s, s.c.backend_id.in_(backends)


def _aliases(conn: Connection, scope: Scope, skus: list[str]) -> dict[str, list[str]]:
    a = t.sku_aliases
    out: dict[str, list[str]] = {}
    for alias, sku in conn.execute(sa.select(a.c.alias, a.c.sku).where(
            a.c.merchant_id.in_(scope.merchant_ids), a.c.sku.in_(skus)).order_by(a.c.id)):
        out.setdefault(sku, []).append(alias)
    return out


def _master_sku(conn: Connection, scope: Scope, sku: str) -> str:
    a = t.sku_aliases
    found = conn.execute(sa.select(a.c.sku).where(a.c.merchant_id.in_(scope.merchant_ids), a.c.alias == sku)).scalar()
    return str(found) if found else sku


def inventory_list(call: Call) -> JSONResponse:
    page = paging(call.request, INVENTORY_MAX_LIMIT)
    s, where = _stock_table(call.scope)
    with call.hub.db.connect() as conn:
        skus = list(conn.execute(sa.select(s.c.sku).where(where).group_by(s.c.sku).order_by(s.c.sku)
                                 .limit(page.limit).offset(page.offset)).scalars())
        rows = list(conn.execute(sa.select(s).where(where, s.c.sku.in_(skus)).order_by(s.c.id))) if skus else []
        aliases = _aliases(conn, call.scope, skus)
    return ok([inventory_record(sku, [r for r in rows if r.sku == sku], aliases.get(sku, []), as_text=False)
               for sku in skus])


def inventory_one(call: Call) -> JSONResponse:
    s, where = _stock_table(call.scope)
    with call.hub.db.connect() as conn:
        sku = _master_sku(conn, call.scope, call.param("sku"))
        rows = list(conn.execute(sa.select(s).where(where, s.c.sku == sku).order_by(s.c.id)))
        if not rows:
            raise ApiFailure(f"No inventory for SKU {call.param('sku')!r}")
        aliases = _aliases(conn, call.scope, [sku])
    return ok(inventory_record(sku, rows, aliases.get(sku, []), as_text=True))


def product(call: Call) -> JSONResponse:
    s, where = _stock_table(call.scope)
    o, ln, c = t.orders, t.order_lines, t.connections
    with call.hub.db.connect() as conn:
        sku = _master_sku(conn, call.scope, call.param("sku"))
        aliases = _aliases(conn, call.scope, [sku]).get(sku, [])
        stock_at = conn.execute(sa.select(sa.func.max(s.c.updated_at)).where(where, s.c.sku == sku)).scalar()
        line = conn.execute(
            sa.select(ln.c.description, ln.c.unit_price, o.c.updated_at).join(o, o.c.id == ln.c.order_id)
            .join(c, c.c.id == o.c.connection_id)
            .where(c.c.merchant_id.in_(call.scope.merchant_ids), ln.c.sku.in_([sku, *aliases]))
            .order_by(o.c.id.desc()).limit(1)).first()
    if stock_at is None and line is None and not aliases:
        raise ApiFailure(f"Product {call.param('sku')!r} not found")
    updated = max([d for d in (stock_at, line.updated_at if line else None) if d is not None], default=None)
    return ok({
        "sku": sku, "name": (line.description if line else "") or sku,
        "description": line.description if line else None,
        "retail_price": float(line.unit_price) if line else None, "wholesale_price": None, "weight_lbs": None,
        "wms_product_main_id": None,
        "last_updated_datetime": updated.strftime("%Y-%m-%d %H:%M:%S") if updated else None,
        "aliases": [{"code_type": "SOURCE_SKU", "code": a} for a in aliases],
    })


TAG = "Merchant"
ENDPOINTS = [
    Endpoint("GET", "/merchant/orders/list/{status}", order_reads.listing, MERCHANT,
             "List the merchant's orders (a warehouse's key: the orders sent to that warehouse)", TAG,
             query=order_reads.LIST_QUERY, response="OrderList"),
    Endpoint("GET", "/merchant/orders/status/{cust_ref}", order_reads.status, MERCHANT, "Status and shipments", TAG,
             response="OrderStatus"),
    Endpoint("GET", "/merchant/inventory", inventory_list, MERCHANT, "Inventory, paged", TAG,
             query=("limit", "page"), response="InventoryList"),
    Endpoint("GET", "/merchant/inventory/{sku}", inventory_one, MERCHANT, "Inventory of one SKU (or alias)", TAG,
             response="InventorySingle"),
    Endpoint("GET", "/merchant/product/{sku}", product, MERCHANT, "Product with its aliases", TAG,
             response="Product"),
]
# The view route is last: its {cust_ref} would otherwise swallow list/ and status/ paths.
VIEW = Endpoint("GET", "/merchant/orders/{cust_ref}", order_reads.view, MERCHANT, "View one order (full record)",
                TAG, query=order_reads.VIEW_QUERY, response="Order")
