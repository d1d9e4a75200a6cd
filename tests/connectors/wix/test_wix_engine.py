"""Wix as a source in the real engine: download, delivery, fulfillment, stock, webhooks, cancels."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from tests.conftest import ShopAdmin
from tests.support import shop
from tests.support.engine import sync
from wix_support import NoBudget, WixAdmin

from orderbridge.config import AppConfig
from orderbridge.connectors.sandbox_kit import ServedApp
from orderbridge.engine.hub import Hub
from orderbridge.engine.intake import handle_webhook
from orderbridge.engine.provision import apply_config
from orderbridge.ledger import schema as t
from orderbridge.ledger.db import open_ledger


def _config(wix_url: str, site: dict[str, Any], key: str, shop_url: str) -> AppConfig:
    return AppConfig.model_validate({
        "runner": {"concurrency": 2, "overlap_seconds": 600, "lease_seconds": 30},
        "merchants": [{"name": "acme"}],
        "connections": [
            {"name": "wix", "merchant": "acme", "type": "wix", "base_url": wix_url, "test_mode": True,
             "credentials": {"api_key": site["apiKey"], "site_id": site["siteId"], "webhook_public_key": key},
             "settings": {}},
            {"name": "wms", "merchant": "acme", "type": "test_wms", "base_url": shop_url, "test_mode": True,
             "credentials": {"token": shop.TOKEN}, "settings": {}},
        ],
        "routes": [{"source": "wix", "backend": "wms"}],
    })


def _orders(hub: Hub) -> dict[str, Any]:
    with hub.db.connect() as conn:
        return {r.external_id: r for r in conn.execute(sa.select(t.orders))}


def test_wix_source_through_the_engine(tmp_path: Any, wix_url: str, admin: WixAdmin) -> None:
    site = admin.site()
    key = admin.get("/webhooks/public-key")["publicKey"]
    paid = admin.order(site, lines=[{"sku": "MUG-1", "quantity": 2, "price": "12.00", "taxRate": "0.21"}])
    unpaid = admin.order(site, paymentStatus="NOT_PAID", status="PENDING")
    gone = admin.order(site)
    admin.act(site, gone["id"], "cancel")
    with ServedApp(shop.create_app()) as served:
        wms = ShopAdmin(served.url)
        wms.stock({"MUG-1": 30, "TEE-M": 5, "TEE-L": 0})
        cfg = _config(wix_url, site, key, served.url)
        hub = Hub(db=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}"), runner=cfg.runner, http_timeout=5,
                  budget=NoBudget())
        apply_config(hub, cfg)
        sync(hub)
        held = _orders(hub)
        assert set(held) == {paid["id"], unpaid["id"]}  # the cancelled one is a skip, with its reason
        assert held[paid["id"]].paid and not held[unpaid["id"]].paid
        refs = wms.state()["wms"]["creates"]
        assert len(refs) == 2

        ref = held[paid["id"]].cust_ref
        wms.ship(ref, [("MUG-1", 2)], tracking="1ZENGINE", carrier="UPS")
        sync(hub)
        sync(hub)
        fulfillments = admin.fulfillments(site)[paid["id"]]
        assert [f["trackingInfo"]["trackingNumber"] for f in fulfillments] == ["1ZENGINE"]
        assert _orders(hub)[paid["id"]].status == "confirmed"
        stock = admin.inventory(site)
        # available at the WMS minus units in orders not yet delivered (none left)
        assert (stock["MUG-1"]["quantity"], stock["TEE-M"]["quantity"], stock["TEE-L"]["quantity"]) == (30, 5, 0)

        # a webhook for the buyer's payment: verified, de-duplicated, the order fetched again
        admin.act(site, unpaid["id"], "pay")
        token = next(d["jwt"] for d in reversed(admin.deliveries(site))
                     if d["eventType"] == "wix.ecom.v1.order_payment_status_updated")

        async def hook() -> list[Any]:
            try:
                return [await handle_webhook(hub, "wix", {"content-type": "text/plain"}, token.encode())
                        for _ in range(2)]
            finally:
                await hub.aclose()
        first, second = asyncio.run(hook())
        assert first["duplicate"] is False and second["duplicate"] is True
        assert _orders(hub)[unpaid["id"]].paid

        # cancelled at Wix after delivery: cancelled at the backend by the cancel job
        admin.act(site, unpaid["id"], "cancel")
        sync(hub)
        wms_orders = wms.state()["wms"]["orders"].values()
        assert {o["ref"]: o["status"] for o in wms_orders}[_orders(hub)[unpaid["id"]].cust_ref] == "canceled"
