"""Holded behind the real engine: the test shop's orders reach Holded, ship, confirm and stock back."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from holded_support import Admin, ScaledBudget
from tests.conftest import ShopAdmin
from tests.support import shop
from tests.support.engine import sync

from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.engine.hub import Hub
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger


def make_hub(tmp_path: Any, shop_url: str, holded_url: str, key: str, backend_options: dict[str, Any]) -> Hub:
    cfg = AppConfig.model_validate({
        "runner": {"concurrency": 4, "overlap_seconds": 600, "lease_seconds": 30},
        "merchants": [{"name": "acme"}],
        "connections": [
            {"name": "shop", "merchant": "acme", "type": "test_shop", "base_url": shop_url, "test_mode": True,
             "credentials": {"token": shop.TOKEN}},
            {"name": "holded", "merchant": "acme", "type": "holded", "base_url": holded_url, "test_mode": True,
             "credentials": {"api_key": key}, "settings": {"generic_contact_name": "Shop customer"}},
        ],
        "routes": [{"source": "shop", "backend": "holded", "backend_options": backend_options}],
    })
    hub = Hub(db=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}"), runner=cfg.runner,
              budget=ScaledBudget(1000.0), http_timeout=5)
    apply_config(hub, cfg)
    return hub



def statuses(hub: Hub) -> dict[str, str]:
    with hub.db.connect() as conn:
        return dict(conn.execute(sa.select(t.orders.c.external_id, t.orders.c.status)).all())


def test_sales_orders_flow_through_the_engine(tmp_path: Any, shop_server: ServedApp, admin: Admin,
                                              url: str) -> None:
    shop_admin = ShopAdmin(shop_server.url)
    key = admin.account(products=[{"sku": "SKU-1", "name": "Shirt", "stock": 10}])
    shop_admin.order("E1", [("SKU-1", 2)], paid=False)
    hub = make_hub(tmp_path, shop_server.url, url, key, {"document_type": "salesorder"})
    sync(hub)
    [doc] = admin.docs(key, "salesorder", ref="PO-E1")  # unpaid is fine for a sales order
    assert statuses(hub)["E1"] == "at_wms" and admin.units(key, "SKU-1") == 10
    assert [c["name"] for c in admin.contacts(key)] == ["Shop customer"]
    admin.send(key, doc["id"], carrier="ups", tracking="1ZE1")
    sync(hub)
    assert statuses(hub)["E1"] == "confirmed"
    state = shop_admin.state()["shop"]
    assert state["confirmations"] == [{"order": "E1", "tracking": ["1ZE1"]}]
    assert state["inventory"]["SKU-1"] == 8
    sync(hub)
    assert len(admin.docs(key, ref="PO-E1")) == 1


def test_receipts_wait_for_payment(tmp_path: Any, shop_server: ServedApp, admin: Admin, url: str) -> None:
    shop_admin = ShopAdmin(shop_server.url)
    key = admin.account(products=[{"sku": "SKU-1", "name": "Shirt", "stock": 10}])
    shop_admin.order("P1", [("SKU-1", 1)], paid=False)
    shop_admin.http.post("/shop/orders", json={
        "id": "P2", "number": "PO-P2", "created": "2026-11-20T10:00:00+00:00", "name": "Ada", "street": "1 Main St",
        "city": "Springfield", "paid": True, "lines": [{"sku": "SKU-1", "qty": 3, "price": 12.5}]}).raise_for_status()
    hub = make_hub(tmp_path, shop_server.url, url, key, {"document_type": "salesreceipt"})
    sync(hub)
    assert admin.docs(key, ref="PO-P1") == []
    [receipt] = admin.docs(key, "salesreceipt", ref="PO-P2")
    assert receipt["total"] == 37.5 and receipt["status"] == 1 and admin.units(key, "SKU-1") == 7
    assert statuses(hub)["P2"] == "at_wms" and statuses(hub)["P1"] != "at_wms"
    # the shop's stock reflects Holded's, less the order still waiting to be sent
    assert shop_admin.state()["shop"]["inventory"]["SKU-1"] == 6
