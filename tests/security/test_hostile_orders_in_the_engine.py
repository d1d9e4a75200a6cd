"""Hostile orders through the engine: each lands in error (or is refused) with its reason, and the
others are imported and delivered as usual; nothing breaks the batch, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from orderbridge.connectors.base import DownloadedOrder
from orderbridge.domain.models import Address, Order, OrderLine
from orderbridge.engine.intake import store_items
from orderbridge.ledger import schema as t
from tests.conftest import ShopAdmin, shop_config
from tests.support.engine import sync


def order(external_id: str, **fields: Any) -> Order:
    values: dict[str, Any] = {"external_id": external_id, "cust_po_no": f"PO-{external_id}",
                              "order_date": datetime(2026, 5, 1, tzinfo=UTC),
                              "ship_to": Address(name="Ada", address1="1 Main St", city="Springfield"),
                              "lines": [OrderLine(sku="SKU-1", quantity=1)]}
    values.update(fields)
    return Order(**values)


def test_hostile_orders_land_in_error_or_are_refused_and_the_rest_flows(make_hub: Any, admin: ShopAdmin) -> None:
    hub = make_hub(shop_config(admin.url))
    with hub.db.connect() as conn:
        row = hub.connection(conn, "shop")
    items = [
        DownloadedOrder("OK-1", {"id": "OK-1"}, order("OK-1")),
        DownloadedOrder("BIG-1", {"id": "BIG-1"}, order("BIG-1", notes="n" * 50_000,
                                                        ship_to=Address(name="A" * 5000, city="Springfield"))),
        DownloadedOrder("BIG-2", {"id": "BIG-2", "pad": "p" * 2_000_000},
                        order("BIG-2", lines=[OrderLine(sku="SKU-1", quantity=1, description="d" * 9000)])),
        DownloadedOrder("X" * 5000, {"id": "long"}, order("LONG")),
        DownloadedOrder("NAN-1", {"id": "NAN-1", "qty": float("nan"), "who": "\ud800", "inf": float("inf")},
                        order("NAN-1")),
        DownloadedOrder("OK-2", {"id": "OK-2"}, order("OK-2")),
    ]
    tally = store_items(hub, row, items, "poll")
    assert tally == {"new": 5, "refused": 1}
    for oid in ("OK-1", "OK-2", "NAN-1"):
        admin.order(oid)  # the shop has them, so delivery can look them up
    sync(hub, "wms")
    with hub.db.connect() as conn:
        rows = {r.external_id: r for r in conn.execute(sa.select(
            t.orders.c.external_id, t.orders.c.status, t.orders.c.error_message, t.orders.c.error_fix,
            t.orders.c.raw))}
        alerts = conn.execute(sa.select(t.alerts.c.message, t.alerts.c.fix)).all()
    assert {k: r.status for k, r in rows.items()} == {"OK-1": "at_wms", "OK-2": "at_wms", "NAN-1": "at_wms",
                                                      "BIG-1": "error", "BIG-2": "error"}
    assert "notes: 50000 characters, at most 10000" in rows["BIG-1"].error_message
    assert "ship_to.name: 5000 characters, at most 300" in rows["BIG-1"].error_message
    assert "lines[1].description: 9000 characters" in rows["BIG-2"].error_message
    assert "shorten" in rows["BIG-1"].error_fix
    assert "not_kept" in rows["BIG-2"].raw  # a 2 MB payload is not stored beside the refused order
    assert rows["NAN-1"].raw["qty"] == "nan" and rows["NAN-1"].raw["inf"] == "inf"
    assert sorted(admin.state()["wms"]["creates"]) == ["PO-NAN-1", "PO-OK-1", "PO-OK-2"]
    assert len(alerts) == 1 and "5000 characters long" in alerts[0].message and alerts[0].fix


def test_an_order_the_database_refuses_fails_alone_and_the_batch_is_stored(make_hub: Any, admin: ShopAdmin) -> None:
    # New orders are stored together; one the database refuses (a quantity no integer column
    # holds, as a connector bug could hand over past validation) sends the batch down the
    # one-by-one path, where only that order fails.
    hub = make_hub(shop_config(admin.url))
    with hub.db.connect() as conn:
        row = hub.connection(conn, "shop")
    broken = order("BAD-1")
    broken.lines[0] = OrderLine.model_construct(**{**broken.lines[0].model_dump(), "quantity": 2**70})
    items = [DownloadedOrder(f"OK-{i}", {"id": f"OK-{i}"}, order(f"OK-{i}")) for i in range(5)]
    items.insert(2, DownloadedOrder("BAD-1", {"id": "BAD-1"}, broken))
    assert store_items(hub, row, items, "poll") == {"new": 5, "failed": 1}
    with hub.db.connect() as conn:
        stored = set(conn.execute(sa.select(t.orders.c.external_id)).scalars())
        lines = conn.execute(sa.select(sa.func.count()).select_from(t.order_lines)).scalar_one()
    assert stored == {f"OK-{i}" for i in range(5)} and lines == 5
    # The failed one was not recorded as read: the next poll offers it again.
    assert store_items(hub, row, items, "poll") == {"same": 5, "failed": 1}
