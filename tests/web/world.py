"""A ledger with two merchants, their connections (test shop/WMS pair), orders, aliases and stock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from orderbridge.config import AppConfig
from orderbridge.engine.hub import Hub
from orderbridge.ledger import schema as t
from tests.support import shop

NOWHERE = "http://127.0.0.1:9"  # the runner is off: nothing is called


def two_merchants() -> AppConfig:
    conns: list[dict[str, Any]] = []
    for m in ("acme", "globex"):
        conns += [{"name": f"{m}-shop", "merchant": m, "type": "test_shop", "base_url": NOWHERE, "test_mode": True,
                   "credentials": {"token": shop.TOKEN}},
                  {"name": f"{m}-wms", "merchant": m, "type": "test_wms", "base_url": NOWHERE, "test_mode": True,
                   "credentials": {"token": shop.TOKEN}}]
    return AppConfig.model_validate({
        "merchants": [{"name": "acme"}, {"name": "globex"}],
        "connections": conns,
        "routes": [{"source": "acme-shop", "backend": "acme-wms"}, {"source": "globex-shop", "backend": "globex-wms"}],
        "sku_aliases": [{"merchant": "acme", "alias": "ACME-OLD", "sku": "ACME-1"},
                        {"merchant": "globex", "alias": "GLOBEX-OLD", "sku": "GLOBEX-1"}],
    })


def add_orders(hub: Hub, connection: str, count: int, *, prefix: str, sku: str, status: str = "at_wms",
               customer: str = "Customer") -> None:
    """Bulk rows, as the download job would leave them (faster than downloading 10,000 orders)."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with hub.db.begin() as conn:
        cid = conn.execute(sa.select(t.connections.c.id).where(t.connections.c.name == connection)).scalar_one()
        first = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.orders.c.id), 0))).scalar_one()) + 1
        rows = [{"id": first + i, "connection_id": cid, "external_id": f"{prefix}{i + 1}",
                 "cust_po_no": f"{prefix}{i + 1}", "cust_ref": f"{prefix}{i + 1}", "status": status,
                 "order_date": start + timedelta(minutes=i), "customer_name": f"{customer} {i + 1}",
                 "raw": {"id": i + 1}, "data": None, "created_at": start + timedelta(minutes=i),
                 "updated_at": start + timedelta(minutes=i)} for i in range(count)]
        for n in range(0, count, 2000):
            conn.execute(t.orders.insert(), rows[n:n + 2000])
            conn.execute(t.order_lines.insert(), [
                {"order_id": r["id"], "line_no": 1, "sku": sku if r["id"] % 100 else f"{sku}-RARE", "quantity": 1,
                 "unit_price": 10, "description": sku} for r in rows[n:n + 2000]])
        if conn.dialect.name == "postgresql":  # explicit ids: move the sequence past them
            conn.exec_driver_sql("SELECT setval('orders_id_seq', (SELECT max(id) FROM orders))")


def add_stock(hub: Hub, backend: str, levels: dict[str, int]) -> None:
    now = datetime.now(UTC)
    with hub.db.begin() as conn:
        bid = conn.execute(sa.select(t.connections.c.id).where(t.connections.c.name == backend)).scalar_one()
        conn.execute(t.stock_levels.insert(), [{"backend_id": bid, "sku": s, "warehouse": "main", "on_hand": q,
                                                "committed": 0, "available": q, "updated_at": now}
                                               for s, q in levels.items()])


def two_merchants_with_api() -> AppConfig:
    """``two_merchants`` plus, for each, an API Access cart routed to a CartRover API warehouse (keys need them)."""
    cfg = two_merchants().model_dump()
    for m in ("acme", "globex"):
        cfg["connections"] += [{"name": f"{m}-cart", "merchant": m, "type": "cartrover_cart"},
                               {"name": f"{m}-api-wms", "merchant": m, "type": "cartrover_wms"}]
        cfg["routes"].append({"source": f"{m}-cart", "backend": f"{m}-api-wms"})
    return AppConfig.model_validate(cfg)
